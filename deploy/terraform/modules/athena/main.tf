# An Athena work group for the lake's Glue tables (and dbt's Athena target). Its settings are
# enforced: a client cannot send results elsewhere, unencrypted, or lift the scan cut-off.

resource "aws_athena_workgroup" "lake" {
  name          = var.name
  description   = "Queries over the Lagoa lake's Glue tables"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3" # the engine that reads and writes Iceberg
    }

    result_configuration {
      output_location = var.output_location

      encryption_configuration {
        encryption_option = var.kms_key_arn == null ? "SSE_S3" : "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }
}
