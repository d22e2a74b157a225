# What `lagoa deploy` and lagoa.yml need: `terraform output -raw <name>`.

output "region" {
  description = "The region of every resource (AWS_REGION)."
  value       = var.region
}

output "lake_buckets" {
  description = "The lake's bucket names, by key (\"lake\", or the zone with bucket_layout = \"per_zone\")."
  value       = module.lake.buckets
}

output "storage_root" {
  description = "lagoa.yml's storage.root (null with bucket_layout = \"per_zone\": see zone_roots)."
  value       = module.lake.storage_root
}

output "zone_roots" {
  description = "Where each zone's objects live."
  value       = module.lake.zone_roots
}

output "glue_catalog_uri" {
  description = "lagoa.yml's catalog.uri."
  value       = "${module.glue.catalog_uri}?region=${var.region}"
}

output "glue_databases" {
  description = "The Glue databases, by zone."
  value       = module.glue.database_names
}

output "athena_workgroup" {
  description = "The Athena work group (dbt's Athena target: work_group)."
  value       = var.enable_athena ? module.athena[0].name : null
}

output "athena_staging_dir" {
  description = "Where Athena writes query results (dbt's Athena target: s3_staging_dir)."
  value       = var.enable_athena ? module.athena[0].staging_dir : null
}

output "secret_arns" {
  description = "The Secrets Manager secrets, by name: put each one's value with `aws secretsmanager put-secret-value`."
  value       = module.secrets.arns
}

output "role_arn" {
  description = "The role Lagoa's tasks run as (MWAA's execution role)."
  value       = module.iam.role_arn
}

output "mwaa_environment" {
  description = "The MWAA environment (`lagoa deploy mwaa --environment`)."
  value       = var.enable_mwaa ? module.mwaa[0].environment : null
}

output "mwaa_bucket" {
  description = "The MWAA environment's bucket (`lagoa deploy mwaa --bucket`)."
  value       = var.enable_mwaa ? module.mwaa[0].bucket : null
}

output "mwaa_webserver_url" {
  description = "The Airflow UI's host."
  value       = var.enable_mwaa ? module.mwaa[0].webserver_url : null
}
