# An AWS account running a Lagoa project: the lake's bucket(s), its Glue databases, an Athena work
# group, the Secrets Manager entries lagoa.yml refers to, the role Lagoa runs as, and an MWAA
# environment that runs the project's DAGs. Each part is a module under modules/.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id       = data.aws_caller_identity.current.account_id
  partition        = data.aws_partition.current.partition
  athena_workgroup = coalesce(var.athena_workgroup, var.project)
  mwaa_environment = coalesce(var.mwaa_environment, var.project)
  mwaa_bucket      = coalesce(var.mwaa_bucket, "${var.lake_bucket}-mwaa")
  role_name        = coalesce(var.role_name, "${var.project}-lagoa")
}

module "lake" {
  source = "./modules/lake"

  bucket                                 = var.lake_bucket
  prefix                                 = var.lake_prefix
  layout                                 = var.bucket_layout
  kms_key_arn                            = var.kms_key_arn
  noncurrent_version_expiration_days     = var.noncurrent_version_expiration_days
  abort_incomplete_multipart_upload_days = var.abort_incomplete_multipart_upload_days
  raw_transition_days                    = var.raw_transition_days
  raw_transition_storage_class           = var.raw_transition_storage_class
  athena_results_expiration_days         = var.enable_athena ? var.athena_results_expiration_days : null
  force_destroy                          = var.force_destroy
}

module "glue" {
  source = "./modules/glue"

  prefix     = var.glue_prefix
  zone_roots = module.lake.zone_roots
}

module "athena" {
  source = "./modules/athena"
  count  = var.enable_athena ? 1 : 0

  name                 = local.athena_workgroup
  output_location      = module.lake.athena_results
  bytes_scanned_cutoff = var.athena_bytes_scanned_cutoff
  kms_key_arn          = var.kms_key_arn
  force_destroy        = var.force_destroy
}

module "secrets" {
  source = "./modules/secrets"

  names                = var.secret_names
  placeholder          = var.secret_placeholder
  kms_key_arn          = var.kms_key_arn
  recovery_window_days = var.secret_recovery_window_days
}

module "iam" {
  source = "./modules/iam"

  name             = local.role_name
  partition        = local.partition
  region           = var.region
  account_id       = local.account_id
  lake_bucket_arns = module.lake.bucket_arns
  lake_prefix      = var.bucket_layout == "single" ? var.lake_prefix : ""
  glue_databases   = module.glue.database_names
  secret_arns      = values(module.secrets.arns)
  kms_key_arn      = var.kms_key_arn
  # Athena writes its results with the caller's rights: the lake's object statement covers them.
  # The ARN is spelled out (not the work group's output) so that a plan shows the whole policy.
  athena = var.enable_athena ? {
    workgroup_arn = "arn:${local.partition}:athena:${var.region}:${local.account_id}:workgroup/${local.athena_workgroup}"
  } : null
  mwaa = var.enable_mwaa ? {
    environment = local.mwaa_environment
    bucket_arn  = "arn:${local.partition}:s3:::${local.mwaa_bucket}"
  } : null
}

module "mwaa" {
  source = "./modules/mwaa"
  count  = var.enable_mwaa ? 1 : 0

  name                  = local.mwaa_environment
  bucket                = local.mwaa_bucket
  airflow_version       = var.mwaa_airflow_version
  environment_class     = var.mwaa_environment_class
  min_workers           = var.mwaa_min_workers
  max_workers           = var.mwaa_max_workers
  webserver_access_mode = var.mwaa_webserver_access_mode
  execution_role_arn    = module.iam.role_arn
  vpc_id                = var.vpc_id
  subnet_ids            = var.private_subnet_ids
  kms_key_arn           = var.kms_key_arn
  log_retention_days    = var.log_retention_days
  log_level             = var.mwaa_log_level
  force_destroy         = var.force_destroy
}
