variable "name" {
  description = "The environment's name."
  type        = string
}

variable "bucket" {
  description = "The environment's bucket, which `lagoa deploy mwaa` fills."
  type        = string
}

variable "airflow_version" {
  description = "MWAA's Airflow version."
  type        = string
}

variable "environment_class" {
  description = "The environment's size (mw1.small, ...)."
  type        = string
}

variable "min_workers" {
  description = "Workers always running."
  type        = number
}

variable "max_workers" {
  description = "Workers at most."
  type        = number
}

variable "webserver_access_mode" {
  description = "PRIVATE_ONLY or PUBLIC_ONLY."
  type        = string
}

variable "execution_role_arn" {
  description = "The role the environment's tasks run as."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the environment."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Two private subnets of the VPC, in different availability zones."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "A KMS key for the bucket, the logs and the environment; null for AWS's own."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days the logs are kept."
  type        = number
}

variable "log_level" {
  description = "The level of every log MWAA writes."
  type        = string
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its objects."
  type        = bool
  default     = false
}
