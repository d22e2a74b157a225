# An MWAA environment for the project's DAGs: its bucket (what `lagoa deploy mwaa` uploads), its
# log groups, its security group and the environment itself.

locals {
  # MWAA writes each kind of log to airflow-<environment>-<Kind>; made here to set retention.
  log_kinds = ["DAGProcessing", "Scheduler", "Task", "WebServer", "Worker"]
}

resource "aws_s3_bucket" "mwaa" {
  bucket        = var.bucket
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "mwaa" {
  bucket = aws_s3_bucket.mwaa.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "mwaa" {
  bucket                  = aws_s3_bucket.mwaa.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true # MWAA refuses a bucket that could be public
}

resource "aws_s3_bucket_versioning" "mwaa" {
  bucket = aws_s3_bucket.mwaa.id
  versioning_configuration {
    status = "Enabled" # MWAA reads plugins.zip, requirements.txt and startup.sh by version
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "mwaa" {
  bucket = aws_s3_bucket.mwaa.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"] # a deny: every action, whoever asks, when the request is not over TLS
    resources = [aws_s3_bucket.mwaa.arn, "${aws_s3_bucket.mwaa.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "mwaa" {
  bucket     = aws_s3_bucket.mwaa.id
  policy     = data.aws_iam_policy_document.tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.mwaa]
}

resource "aws_s3_bucket_lifecycle_configuration" "mwaa" {
  bucket = aws_s3_bucket.mwaa.id

  # Old DAG files only: MWAA reads dags/ as it is now. The old versions of plugins.zip,
  # requirements.txt and startup.sh stay, since an environment may still name one.
  rule {
    id     = "old-dag-versions"
    status = "Enabled"
    filter {
      prefix = "dags/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }

  rule {
    id     = "unfinished-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.mwaa]
}

resource "aws_cloudwatch_log_group" "mwaa" {
  for_each = toset(local.log_kinds)

  name              = "airflow-${var.name}-${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_security_group" "mwaa" {
  name        = "${var.name}-mwaa"
  description = "MWAA environment ${var.name}: its own parts talk to each other; out to AWS and package indexes"
  vpc_id      = var.vpc_id
}

# MWAA's scheduler, workers and web server reach each other through this self-reference.
resource "aws_vpc_security_group_ingress_rule" "self" {
  security_group_id            = aws_security_group.mwaa.id
  referenced_security_group_id = aws_security_group.mwaa.id
  ip_protocol                  = "-1"
  description                  = "Between the environment's own parts"
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.mwaa.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = "AWS APIs, S3 and the package index startup.sh installs from"
}

resource "aws_vpc_security_group_egress_rule" "self" {
  security_group_id            = aws_security_group.mwaa.id
  referenced_security_group_id = aws_security_group.mwaa.id
  ip_protocol                  = "-1"
  description                  = "Between the environment's own parts (its metadata database too)"
}

resource "aws_mwaa_environment" "lagoa" {
  name                  = var.name
  airflow_version       = var.airflow_version
  environment_class     = var.environment_class
  min_workers           = var.min_workers
  max_workers           = var.max_workers
  webserver_access_mode = var.webserver_access_mode
  execution_role_arn    = var.execution_role_arn
  kms_key               = var.kms_key_arn
  source_bucket_arn     = aws_s3_bucket.mwaa.arn
  dag_s3_path           = "dags"

  network_configuration {
    security_group_ids = [aws_security_group.mwaa.id]
    subnet_ids         = var.subnet_ids
  }

  logging_configuration {
    dag_processing_logs {
      enabled   = true
      log_level = var.log_level
    }
    scheduler_logs {
      enabled   = true
      log_level = var.log_level
    }
    task_logs {
      enabled   = true
      log_level = var.log_level
    }
    webserver_logs {
      enabled   = true
      log_level = var.log_level
    }
    worker_logs {
      enabled   = true
      log_level = var.log_level
    }
  }

  lifecycle {
    # `lagoa deploy mwaa` owns these: it uploads the files and points the environment at their
    # new versions. Terraform leaving them be keeps a plan from undoing a deploy.
    ignore_changes = [
      plugins_s3_path,
      plugins_s3_object_version,
      requirements_s3_path,
      requirements_s3_object_version,
      startup_script_s3_path,
      startup_script_s3_object_version,
    ]

    precondition {
      condition     = var.vpc_id != null && length(var.subnet_ids) == 2
      error_message = "MWAA needs vpc_id and two private_subnet_ids (in different availability zones); or set enable_mwaa = false."
    }
  }

  depends_on = [
    aws_cloudwatch_log_group.mwaa,
    aws_s3_bucket_public_access_block.mwaa,
    aws_s3_bucket_versioning.mwaa,
  ]
}
