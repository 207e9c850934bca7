# ElastiCache Valkey with TLS and an AUTH token, reachable only from the compute security group.
# A replication group (of one node) because only replication groups take
# transit_encryption_mode and auth_token.
terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
    random = {
      source = "hashicorp/random"
    }
  }
}

resource "aws_elasticache_subnet_group" "main" {
  name       = "${var.name}-valkey"
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "valkey" {
  name        = "${var.name}-valkey-sg"
  description = "Valkey: port 6379 from the Cerberus compute security group only"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${var.name}-valkey-sg"
  }
}

resource "aws_vpc_security_group_ingress_rule" "valkey_from_app" {
  security_group_id            = aws_security_group.valkey.id
  description                  = "Valkey from Cerberus"
  referenced_security_group_id = var.app_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_vpc_security_group_egress_rule" "app_to_valkey" {
  security_group_id            = var.app_security_group_id
  description                  = "Cerberus to Valkey"
  referenced_security_group_id = aws_security_group.valkey.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

# ElastiCache AUTH tokens are 16-128 printable characters without @, " or /.
resource "random_password" "auth_token" {
  length  = 48
  special = false
}

resource "aws_elasticache_replication_group" "main" {
  #checkov:skip=CKV_AWS_191:Encrypted at rest with the AWS-managed key; a customer key adds cost and no reader
  #checkov:skip=CKV2_AWS_50:One node by design (deployment guide: Multi-AZ Valkey is an optional enhancement); the cache is rebuilt from PostgreSQL
  replication_group_id       = "${var.name}-valkey"
  description                = "Cerberus cache (policies, keys, rate limits) for ${var.name}"
  engine                     = "valkey"
  engine_version             = var.engine_version
  node_type                  = var.node_type
  num_cache_clusters         = 1
  port                       = 6379
  parameter_group_name       = var.parameter_group_name
  subnet_group_name          = aws_elasticache_subnet_group.main.name
  security_group_ids         = [aws_security_group.valkey.id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.auth_token.result
  automatic_failover_enabled = false
  snapshot_retention_limit   = var.snapshot_retention_limit
  auto_minor_version_upgrade = true
  apply_immediately          = true
}
