output "role_arn" {
  description = "The role's ARN."
  value       = aws_iam_role.lagoa.arn
  # An environment given this role needs its permissions from the start.
  depends_on = [aws_iam_role_policy.lagoa]
}

output "role_name" {
  description = "The role's name."
  value       = aws_iam_role.lagoa.name
}

output "policy_name" {
  description = "The name of the role's inline policy."
  value       = aws_iam_role_policy.lagoa.name
}
