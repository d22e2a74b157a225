variable "prefix" {
  description = "The databases' prefix: <prefix>_raw, <prefix>_bronze, <prefix>_silver, <prefix>_gold."
  type        = string
}

variable "zone_roots" {
  description = "Each zone's S3 root, by zone: the database's default location."
  type        = map(string)
}
