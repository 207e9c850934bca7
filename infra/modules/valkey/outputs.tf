output "endpoint" {
  description = "Primary endpoint of the replication group."
  value       = aws_elasticache_replication_group.main.primary_endpoint_address
}

output "port" {
  description = "Valkey port."
  value       = aws_elasticache_replication_group.main.port
}

output "replication_group_id" {
  description = "Replication group ID, as aws elasticache describe-replication-groups takes it."
  value       = aws_elasticache_replication_group.main.replication_group_id
}

output "security_group_id" {
  description = "Security group of the cache."
  value       = aws_security_group.valkey.id
}

output "redis_url" {
  description = "REDIS_URL for Cerberus: TLS (rediss://) with the AUTH token."
  value       = "rediss://:${random_password.auth_token.result}@${aws_elasticache_replication_group.main.primary_endpoint_address}:${aws_elasticache_replication_group.main.port}/0"
  sensitive   = true
}
