variable "bucket" {
  description = "The lake's bucket; with layout \"per_zone\", the prefix of the zones' buckets (<bucket>-raw, ...)."
  type        = string
}

variable "prefix" {
  description = "The lake's root inside the bucket (layout \"single\"), without slashes at either end; empty for the bucket's root."
  type        = string
  default     = ""
}

variable "layout" {
  description = "\"single\" (one bucket, zones as prefixes) or \"per_zone\" (a bucket per zone)."
  type        = string
  default     = "single"
}

variable "kms_key_arn" {
  description = "A KMS key for SSE-KMS; null for SSE-S3."
  type        = string
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days an object's replaced or deleted version is kept."
  type        = number
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days before the parts of an unfinished upload are deleted."
  type        = number
}

variable "raw_transition_days" {
  description = "Days before raw/ objects move to raw_transition_storage_class; null for never."
  type        = number
  default     = null
}

variable "raw_transition_storage_class" {
  description = "The storage class raw/ objects move to."
  type        = string
  default     = "STANDARD_IA"
}

variable "athena_results_expiration_days" {
  description = "Days Athena's results under athena-results/ are kept; null when there is no Athena."
  type        = number
  default     = null
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete buckets that hold objects."
  type        = bool
  default     = false
}
