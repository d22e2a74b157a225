output "name" {
  description = "The work group's name."
  value       = aws_athena_workgroup.lake.name
}

output "arn" {
  description = "The work group's ARN."
  value       = aws_athena_workgroup.lake.arn
}

output "staging_dir" {
  description = "The work group's result location (dbt-athena's s3_staging_dir)."
  value       = var.output_location
}
