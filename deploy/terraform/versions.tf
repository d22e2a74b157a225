terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The version the tests run against (and the one offline mirrors ship).
      version = "~> 5.100.0"
    }
  }
}
