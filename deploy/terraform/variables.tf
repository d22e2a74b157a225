# The project and where it runs. `lagoa deploy terraform` writes most of these into
# terraform.tfvars from lagoa.yml; the rest keep their defaults unless you set them.

variable "project" {
  description = "The Lagoa project's name (lagoa.yml `name`): tags every resource and prefixes the names this configuration derives."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", var.project))
    error_message = "project must be 1-40 letters, digits, _ or -, starting with a letter or digit."
  }
}

variable "region" {
  description = "The AWS region of every resource."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Tags added to every resource (besides lagoa:project)."
  type        = map(string)
  default     = {}
}

variable "endpoint_url" {
  description = "Send every AWS call to this endpoint instead of AWS (an AWS-compatible server such as moto, for tests). Null: AWS itself."
  type        = string
  default     = null
}

# The lake: storage.root is s3://<lake_bucket>/<lake_prefix>.

variable "lake_bucket" {
  description = "The lake's bucket (storage.root's bucket). With bucket_layout = \"per_zone\", the zones' buckets are <lake_bucket>-raw, -bronze, -silver and -gold."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,54}[a-z0-9]$", var.lake_bucket))
    error_message = "lake_bucket must be an S3 bucket name: 3-56 lowercase letters, digits, dots or hyphens (room is left for a -bronze suffix)."
  }
}

variable "lake_prefix" {
  description = "The key prefix of the lake's root inside its bucket (storage.root's path), without slashes at either end; empty for the bucket's root."
  type        = string
  default     = ""

  validation {
    condition     = !startswith(var.lake_prefix, "/") && !endswith(var.lake_prefix, "/")
    error_message = "lake_prefix takes no leading or trailing slash: write lake, not /lake/."
  }
}

variable "bucket_layout" {
  description = "\"single\": one bucket, the zones as raw/, bronze/, silver/ and gold/ under lake_prefix (what storage.root names). \"per_zone\": one bucket per zone, for accounts whose policies set retention or access per zone."
  type        = string
  default     = "single"

  validation {
    condition     = contains(["single", "per_zone"], var.bucket_layout)
    error_message = "bucket_layout is \"single\" or \"per_zone\"."
  }
}

variable "kms_key_arn" {
  description = "A KMS key for server-side encryption of the buckets, Athena's results and the secrets. Null: SSE-S3 (AES-256, no KMS charges) and Secrets Manager's own key."
  type        = string
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object's old version is kept (versioning keeps every one otherwise; Iceberg's expired files stay billed until then)."
  type        = number
  default     = 30
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which the parts of an upload that never completed (a crashed write) are deleted."
  type        = number
  default     = 7
}

variable "raw_transition_days" {
  description = "Move raw/ objects (immutable landed files) to raw_transition_storage_class after this many days. Null: never."
  type        = number
  default     = null
}

variable "raw_transition_storage_class" {
  description = "The storage class raw/ objects move to after raw_transition_days."
  type        = string
  default     = "STANDARD_IA"

  validation {
    condition     = contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.raw_transition_storage_class)
    error_message = "raw_transition_storage_class is one of STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete buckets that still hold objects (for test accounts; never for a lake you keep)."
  type        = bool
  default     = false
}

# Glue: catalog.uri is glue://<glue_prefix>?region=<region>.

variable "glue_prefix" {
  description = "The Glue databases' prefix (catalog.uri's host): the databases are <glue_prefix>_raw, _bronze, _silver and _gold."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,240}$", var.glue_prefix))
    error_message = "glue_prefix must be lowercase letters, digits and _, starting with a letter (Athena reads no other database names)."
  }
}

# Athena.

variable "enable_athena" {
  description = "Create the Athena work group (queries over the Glue tables, dbt's Athena target)."
  type        = bool
  default     = true
}

variable "athena_workgroup" {
  description = "The Athena work group's name. Null: <project>."
  type        = string
  default     = null
}

variable "athena_bytes_scanned_cutoff" {
  description = "Athena cancels a query of the work group that scans more bytes than this (it bills per byte scanned). At least 10 MB."
  type        = number
  default     = 107374182400 # 100 GiB, about 0.49 USD a query at eu-west-1's 5 USD per TB

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff must be at least 10485760 (10 MB), Athena's minimum."
  }
}

variable "athena_results_expiration_days" {
  description = "Days Athena's query results are kept under athena-results/."
  type        = number
  default     = 30
}

# Secrets Manager.

variable "secret_names" {
  description = "The Secrets Manager secrets lagoa.yml refers to as $${aws-secret:NAME}. Created empty: put their values with `aws secretsmanager put-secret-value`, never through Terraform."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.secret_names : can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", name))])
    error_message = "Each secret name is 1-512 letters, digits or /_+=.@- (Secrets Manager's rule)."
  }
}

variable "secret_placeholder" {
  description = "A first value for each secret (say, \"unset\") so that reading one fails clearly rather than with no value. Null: the secrets have no value until you put one. Never a real secret: the state file would hold it."
  type        = string
  default     = null
  sensitive   = true
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can be restored (0: deleted at once; 7-30 otherwise)."
  type        = number
  default     = 7
}

# The role Lagoa runs as.

variable "role_name" {
  description = "The IAM role Lagoa's tasks run as (MWAA's execution role). Null: <project>-lagoa."
  type        = string
  default     = null
}

# MWAA.

variable "enable_mwaa" {
  description = "Create the MWAA environment, its bucket, security group and log groups (a VPC with two private subnets must exist)."
  type        = bool
  default     = true
}

variable "mwaa_environment" {
  description = "The MWAA environment's name. Null: <project>."
  type        = string
  default     = null
}

variable "mwaa_bucket" {
  description = "The bucket `lagoa deploy mwaa` uploads to (dags/, plugins.zip, requirements.txt, startup.sh). Null: <lake_bucket>-mwaa."
  type        = string
  default     = null
}

variable "mwaa_airflow_version" {
  description = "MWAA's Airflow version (`lagoa deploy mwaa` builds for the environment's)."
  type        = string
  default     = "3.3.1"
}

variable "mwaa_environment_class" {
  description = "mw1.micro, mw1.small, mw1.medium, mw1.large, mw1.xlarge or mw1.2xlarge."
  type        = string
  default     = "mw1.small"
}

variable "mwaa_min_workers" {
  description = "Workers MWAA always runs."
  type        = number
  default     = 1
}

variable "mwaa_max_workers" {
  description = "Workers MWAA scales up to."
  type        = number
  default     = 2
}

variable "mwaa_webserver_access_mode" {
  description = "PRIVATE_ONLY (the Airflow UI inside the VPC) or PUBLIC_ONLY (on the internet, behind IAM sign-in)."
  type        = string
  default     = "PRIVATE_ONLY"

  validation {
    condition     = contains(["PRIVATE_ONLY", "PUBLIC_ONLY"], var.mwaa_webserver_access_mode)
    error_message = "mwaa_webserver_access_mode is PRIVATE_ONLY or PUBLIC_ONLY."
  }
}

variable "vpc_id" {
  description = "The VPC MWAA runs in (needed when enable_mwaa)."
  type        = string
  default     = null
}

variable "private_subnet_ids" {
  description = "Two private subnets of vpc_id in different availability zones, with a route to S3 and (for startup.sh's pip) to PyPI or your mirror."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days MWAA's CloudWatch logs are kept."
  type        = number
  default     = 30
}

variable "mwaa_log_level" {
  description = "The level of MWAA's task, scheduler, DAG processing, worker and web server logs."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"], var.mwaa_log_level)
    error_message = "mwaa_log_level is CRITICAL, ERROR, WARNING, INFO or DEBUG."
  }
}
