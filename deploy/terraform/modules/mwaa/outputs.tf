output "environment" {
  description = "The environment's name."
  value       = aws_mwaa_environment.lagoa.name
}

output "bucket" {
  description = "The environment's bucket (`lagoa deploy mwaa --bucket`)."
  value       = aws_s3_bucket.mwaa.id
}

output "webserver_url" {
  description = "The Airflow UI's host."
  value       = aws_mwaa_environment.lagoa.webserver_url
}

output "log_groups" {
  description = "The environment's CloudWatch log groups, by kind."
  value       = { for kind, group in aws_cloudwatch_log_group.mwaa : kind => group.name }
}
