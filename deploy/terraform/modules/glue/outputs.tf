output "database_names" {
  description = "The databases' names, by zone."
  value       = { for zone, database in aws_glue_catalog_database.zone : zone => database.name }
}

output "catalog_uri" {
  description = "catalog.uri's value without its region: glue://<prefix>."
  value       = "glue://${var.prefix}"
}
