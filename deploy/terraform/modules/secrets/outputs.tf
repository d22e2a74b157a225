output "arns" {
  description = "The secrets' ARNs, by name."
  value       = { for name, secret in aws_secretsmanager_secret.lagoa : name => secret.arn }
}
