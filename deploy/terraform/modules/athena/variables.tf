variable "name" {
  description = "The work group's name."
  type        = string
}

variable "output_location" {
  description = "Where query results go: s3://bucket/prefix/ (ending in /)."
  type        = string
}

variable "bytes_scanned_cutoff" {
  description = "A query scanning more bytes than this is cancelled."
  type        = number
}

variable "kms_key_arn" {
  description = "A KMS key for the results (SSE_KMS); null for SSE_S3."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the work group with its saved queries."
  type        = bool
  default     = false
}
