output "buckets" {
  description = "The lake's bucket names, by key (\"lake\", or the zone)."
  value       = { for key, bucket in aws_s3_bucket.lake : key => bucket.id }
}

output "bucket_arns" {
  description = "The lake's bucket ARNs."
  value       = [for bucket in aws_s3_bucket.lake : bucket.arn]
}

output "storage_root" {
  description = "storage.root for lagoa.yml (layout \"single\"); null for \"per_zone\"."
  value       = local.single ? trimsuffix("s3://${var.bucket}/${var.prefix}", "/") : null
}

output "zone_roots" {
  description = "Each zone's root: s3://bucket/prefix/zone, or the zone's bucket."
  value       = local.zone_roots
}

output "athena_results" {
  description = "Athena's result location: an athena-results/ prefix in the lake's (or gold's) bucket."
  # From the names, not the buckets, so that a plan shows it.
  value = "s3://${local.buckets[local.results_key]}/${local.results_prefix}"
}
