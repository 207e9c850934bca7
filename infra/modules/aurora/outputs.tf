output "endpoint" {
  description = "Writer endpoint of the cluster."
  value       = aws_rds_cluster.main.endpoint
}

output "reader_endpoint" {
  description = "Reader endpoint of the cluster."
  value       = aws_rds_cluster.main.reader_endpoint
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_rds_cluster.main.port
}

output "cluster_identifier" {
  description = "Cluster identifier, as the aws rds commands of docs/deployment.md take it."
  value       = aws_rds_cluster.main.cluster_identifier
}

output "security_group_id" {
  description = "Security group of the cluster."
  value       = aws_security_group.aurora.id
}

output "database_url" {
  description = "DATABASE_URL for Cerberus (asyncpg driver)."
  value       = "postgresql+asyncpg://${urlencode(var.master_username)}:${urlencode(var.master_password)}@${aws_rds_cluster.main.endpoint}:${aws_rds_cluster.main.port}/${var.database_name}"
  sensitive   = true
}
