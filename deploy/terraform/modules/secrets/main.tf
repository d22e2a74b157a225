# The Secrets Manager entries lagoa.yml refers to (${aws-secret:NAME}). Terraform creates the
# entries only: their values are put with `aws secretsmanager put-secret-value`, so that no secret
# is in this configuration, its variables or its state.

locals {
  # Whether there is a placeholder is no secret (the placeholder is).
  with_placeholder = nonsensitive(var.placeholder != null)
}

resource "aws_secretsmanager_secret" "lagoa" {
  for_each = toset(var.names)

  name                    = each.value
  description             = "Read by Lagoa as $${aws-secret:${each.value}}"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
}

# Only when asked for: a placeholder so that reading an unset secret fails with a clear value
# rather than "no value". Terraform never changes it again (the real value is put outside).
resource "aws_secretsmanager_secret_version" "placeholder" {
  for_each = local.with_placeholder ? toset(var.names) : toset([])

  secret_id     = aws_secretsmanager_secret.lagoa[each.value].id
  secret_string = var.placeholder

  lifecycle {
    ignore_changes = [secret_string]
  }
}
