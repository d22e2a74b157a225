# A Glue database per zone, named as Lagoa's Glue catalog names them (catalog.uri
# glue://<prefix>): the Iceberg tables bronze.<source> are <prefix>_bronze.<source>, and so on.

resource "aws_glue_catalog_database" "zone" {
  for_each = var.zone_roots

  name         = "${var.prefix}_${each.key}"
  description  = "Lagoa's ${each.key} zone"
  location_uri = each.value
}
