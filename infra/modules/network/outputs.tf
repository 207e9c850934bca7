output "vpc_id" {
  description = "ID of the default VPC."
  value       = data.aws_vpc.default.id
}

output "subnet_ids" {
  description = "The default subnets, one per availability zone."
  value       = data.aws_subnets.default.ids
}

output "app_security_group_id" {
  description = "Security group of the compute service; Aurora and Valkey admit only this group."
  value       = aws_security_group.app.id
}
