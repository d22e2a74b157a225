variable "name" {
  description = "The role's name."
  type        = string
}

variable "partition" {
  description = "The AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
}

variable "region" {
  description = "The region of the Glue catalog, the work group and the MWAA environment."
  type        = string
}

variable "account_id" {
  description = "The account of the Glue catalog, the log groups and the MWAA environment."
  type        = string
}

variable "lake_bucket_arns" {
  description = "The lake's buckets."
  type        = list(string)
}

variable "lake_prefix" {
  description = "The lake's root inside its bucket(s), without slashes at either end; empty for the whole bucket."
  type        = string
  default     = ""
}

variable "glue_databases" {
  description = "The Glue databases, by zone."
  type        = map(string)
}

variable "secret_arns" {
  description = "The Secrets Manager secrets Lagoa reads."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "The KMS key of the buckets and secrets; null when they use AWS's own keys."
  type        = string
  default     = null
}

variable "athena" {
  description = "The Athena work group's ARN; null without Athena."
  type = object({
    workgroup_arn = string
  })
  default = null
}

variable "mwaa" {
  description = "The MWAA environment's name and bucket; null without MWAA."
  type = object({
    environment = string
    bucket_arn  = string
  })
  default = null
}
