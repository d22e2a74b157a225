locals {
  # An endpoint of one's own (an AWS-compatible server such as moto) has no real account behind
  # it: skip the checks that would ask AWS about the credentials and the account.
  custom_endpoint = var.endpoint_url != null
}

provider "aws" {
  region = var.region

  skip_credentials_validation = local.custom_endpoint
  skip_requesting_account_id  = local.custom_endpoint
  skip_metadata_api_check     = local.custom_endpoint
  skip_region_validation      = local.custom_endpoint
  s3_use_path_style           = local.custom_endpoint

  dynamic "endpoints" {
    for_each = local.custom_endpoint ? [var.endpoint_url] : []
    content {
      athena         = endpoints.value
      cloudwatchlogs = endpoints.value
      ec2            = endpoints.value
      glue           = endpoints.value
      iam            = endpoints.value
      kms            = endpoints.value
      mwaa           = endpoints.value
      s3             = endpoints.value
      secretsmanager = endpoints.value
      sts            = endpoints.value
    }
  }

  default_tags {
    tags = merge({ "lagoa:project" = var.project }, var.tags)
  }
}
