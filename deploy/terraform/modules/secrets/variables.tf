variable "names" {
  description = "The secrets' names."
  type        = list(string)
}

variable "placeholder" {
  description = "A first value for each secret; null for none."
  type        = string
  default     = null
  sensitive   = true
}

variable "kms_key_arn" {
  description = "A KMS key for the secrets; null for Secrets Manager's own (aws/secretsmanager)."
  type        = string
  default     = null
}

variable "recovery_window_days" {
  description = "Days a deleted secret can be restored; 0 deletes at once."
  type        = number
  default     = 7
}
