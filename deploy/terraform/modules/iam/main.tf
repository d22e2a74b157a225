# The role Lagoa's tasks run as: MWAA's execution role. Every action is named (no wildcard), and
# every resource is one of this configuration's buckets, prefixes, Glue databases and their
# tables, secrets, work group, environment or log groups. The exceptions are actions AWS
# authorises on no resource at all (s3:GetAccountPublicAccessBlock, cloudwatch:PutMetricData,
# the latter held to MWAA's namespace), and MWAA's own queue and key, which live in an account
# of MWAA's.

locals {
  arn     = "arn:${var.partition}"
  objects = var.lake_prefix == "" ? "*" : "${var.lake_prefix}/*"
  glue    = "${local.arn}:glue:${var.region}:${var.account_id}"
  log_groups = var.mwaa == null ? null : (
    "${local.arn}:logs:${var.region}:${var.account_id}:log-group:airflow-${var.mwaa.environment}-*"
  )
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]
    }
    # Only on behalf of this account's environments (the confused-deputy guard).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

data "aws_iam_policy_document" "lagoa" {
  statement {
    sid       = "LakeBuckets"
    actions   = ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = var.lake_bucket_arns
  }

  statement {
    sid       = "LakeList"
    actions   = ["s3:ListBucket"]
    resources = var.lake_bucket_arns
    dynamic "condition" {
      for_each = var.lake_prefix == "" ? [] : [var.lake_prefix]
      content {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = [condition.value, "${condition.value}/*"]
      }
    }
  }

  statement {
    sid = "LakeObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [for bucket in var.lake_bucket_arns : "${bucket}/${local.objects}"]
  }

  statement {
    sid = "GlueTables"
    actions = [
      "glue:GetDatabase",
      "glue:GetDatabases",
      "glue:GetTable",
      "glue:GetTables",
      "glue:CreateTable",
      "glue:UpdateTable",
      "glue:DeleteTable",
      "glue:GetTableVersion",
      "glue:GetTableVersions",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
      "glue:CreatePartition",
      "glue:BatchCreatePartition",
      "glue:UpdatePartition",
      "glue:DeletePartition",
      "glue:BatchDeletePartition",
    ]
    resources = concat(
      ["${local.glue}:catalog"],
      [for database in values(var.glue_databases) : "${local.glue}:database/${database}"],
      [for database in values(var.glue_databases) : "${local.glue}:table/${database}/*"],
    )
  }

  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [var.secret_arns] : []
    content {
      sid       = "Secrets"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "LakeKey"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.athena == null ? [] : [var.athena]
    content {
      sid = "AthenaQueries"
      actions = [
        "athena:StartQueryExecution",
        "athena:StopQueryExecution",
        "athena:GetQueryExecution",
        "athena:BatchGetQueryExecution",
        "athena:ListQueryExecutions",
        "athena:GetQueryResults",
        "athena:GetQueryResultsStream",
        "athena:GetWorkGroup",
      ]
      resources = [statement.value.workgroup_arn]
    }
  }

  dynamic "statement" {
    for_each = var.athena == null ? [] : [var.athena]
    content {
      sid = "AthenaCatalog"
      actions = [
        "athena:GetDataCatalog",
        "athena:GetDatabase",
        "athena:ListDatabases",
        "athena:GetTableMetadata",
        "athena:ListTableMetadata",
      ]
      resources = ["${local.arn}:athena:${var.region}:${var.account_id}:datacatalog/AwsDataCatalog"]
    }
  }

  dynamic "statement" {
    for_each = var.mwaa == null ? [] : [var.mwaa]
    content {
      sid       = "MwaaMetrics"
      actions   = ["airflow:PublishMetrics"]
      resources = ["${local.arn}:airflow:${var.region}:${var.account_id}:environment/${statement.value.environment}"]
    }
  }

  dynamic "statement" {
    for_each = var.mwaa == null ? [] : [var.mwaa]
    content {
      sid = "MwaaBucket"
      actions = [
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetBucketVersioning",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetEncryptionConfiguration",
      ]
      resources = [statement.value.bucket_arn, "${statement.value.bucket_arn}/*"]
    }
  }

  dynamic "statement" {
    for_each = var.mwaa == null ? [] : [local.log_groups]
    content {
      sid = "MwaaLogs"
      actions = [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:GetLogEvents",
        "logs:GetLogRecord",
        "logs:GetLogGroupFields",
        "logs:GetQueryResults",
      ]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.mwaa == null ? [] : [var.mwaa]
    content {
      sid       = "MwaaLogGroupsList"
      actions   = ["logs:DescribeLogGroups"]
      resources = ["${local.arn}:logs:${var.region}:${var.account_id}:log-group:*"]
    }
  }

  dynamic "statement" {
    for_each = var.mwaa == null ? [] : [var.mwaa]
    content {
      sid       = "MwaaAccountChecks"
      actions   = ["s3:GetAccountPublicAccessBlock"]
      resources = ["*"] # an account-level read: S3 authorises it on no resource
    }
  }

  dynamic "statement" {
    for_each = var.mwaa == null ? [] : [var.mwaa]
    content {
      sid       = "MwaaCloudWatchMetrics"
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"] # CloudWatch authorises it on no resource: held to MWAA's namespace instead
      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = ["AmazonMWAA"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.mwaa == null ? [] : [var.mwaa]
    content {
      sid = "MwaaCeleryQueue"
      actions = [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
      ]
      # The Celery queue is MWAA's, in an account of MWAA's: hence any account, this region.
      resources = ["${local.arn}:sqs:${var.region}:*:airflow-celery-*"]
    }
  }

  dynamic "statement" {
    for_each = var.mwaa == null ? [] : [var.mwaa]
    content {
      sid           = "MwaaCeleryQueueKey"
      actions       = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:Encrypt"]
      not_resources = ["${local.arn}:kms:*:${var.account_id}:key/*"]
      # MWAA's queue is encrypted with a key of MWAA's: usable only through SQS.
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sqs.${var.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "lagoa" {
  name               = var.name
  description        = "What Lagoa's tasks may do: the lake, its Glue databases, its secrets"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "lagoa" {
  name   = "lagoa"
  role   = aws_iam_role.lagoa.id
  policy = data.aws_iam_policy_document.lagoa.json
}
