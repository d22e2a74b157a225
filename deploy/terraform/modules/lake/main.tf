# The lake's bucket(s): encrypted, versioned, private, reachable over TLS only, with lifecycle
# rules that keep versioning from billing forever for what Iceberg already expired.

locals {
  zones  = ["raw", "bronze", "silver", "gold"]
  single = var.layout == "single"
  root   = var.prefix == "" ? "" : "${var.prefix}/"

  # Bucket by key: "lake" for the single bucket, else the zone's name.
  buckets = local.single ? { lake = var.bucket } : { for zone in local.zones : zone => "${var.bucket}-${zone}" }

  zone_roots = {
    for zone in local.zones : zone => (
      local.single ? "s3://${var.bucket}/${local.root}${zone}" : "s3://${var.bucket}-${zone}"
    )
  }

  # Athena's results sit beside the zones (single), or in the gold bucket, which most queries read.
  results_key    = local.single ? "lake" : "gold"
  results_prefix = local.single ? "${local.root}athena-results/" : "athena-results/"
  raw_key        = local.single ? "lake" : "raw"
  raw_prefix     = local.single ? "${local.root}raw/" : ""
}

resource "aws_s3_bucket" "lake" {
  for_each = local.buckets

  bucket        = each.value
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  for_each = aws_s3_bucket.lake

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs: the bucket policy and IAM decide alone
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  for_each = aws_s3_bucket.lake

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "lake" {
  for_each = aws_s3_bucket.lake

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  for_each = aws_s3_bucket.lake

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One data key per bucket rather than per object: KMS requests (and their cost) drop ~99%.
    bucket_key_enabled = var.kms_key_arn != null
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = aws_s3_bucket.lake

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"] # a deny: every action, whoever asks, when the request is not over TLS
    resources = [
      each.value.arn,
      "${each.value.arn}/*",
    ]
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

resource "aws_s3_bucket_policy" "lake" {
  for_each = aws_s3_bucket.lake

  bucket = each.value.id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  # S3 refuses a bucket policy while the public access block is being set.
  depends_on = [aws_s3_bucket_public_access_block.lake]
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  for_each = aws_s3_bucket.lake

  bucket = each.value.id

  rule {
    id     = "old-versions-and-unfinished-uploads"
    status = "Enabled"
    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  rule {
    id     = "delete-markers"
    status = "Enabled"
    filter {}

    # A delete marker with no version left behind it only costs a request on every listing.
    expiration {
      expired_object_delete_marker = true
    }
  }

  dynamic "rule" {
    for_each = var.raw_transition_days != null && each.key == local.raw_key ? [var.raw_transition_days] : []
    content {
      id     = "raw-transition"
      status = "Enabled"
      filter {
        prefix = local.raw_prefix
      }
      transition {
        days          = rule.value
        storage_class = var.raw_transition_storage_class
      }
    }
  }

  dynamic "rule" {
    for_each = var.athena_results_expiration_days != null && each.key == local.results_key ? [var.athena_results_expiration_days] : []
    content {
      id     = "athena-results-expiration"
      status = "Enabled"
      filter {
        prefix = local.results_prefix
      }
      expiration {
        days = rule.value
      }
    }
  }

  # Rules apply to versions: versioning must be on first.
  depends_on = [aws_s3_bucket_versioning.lake]
}
