output "app_url" {
  description = "HTTPS URL of Cerberus."
  value       = one(concat(module.apprunner[*].service_url, module.ecs_express[*].service_url))
}

output "ecr_repository_url" {
  description = "ECR repository the deploy scripts push to."
  value       = module.ecr.repository_url
}

output "apprunner_service_arn" {
  description = "ARN of the service running Cerberus: the App Runner service, or the ECS Express service when compute = ecs_express."
  value       = one(concat(module.apprunner[*].service_arn, module.ecs_express[*].service_arn))
}

output "service_name" {
  description = "Name of the service running Cerberus."
  value       = one(concat(module.apprunner[*].service_name, module.ecs_express[*].service_name))
}

output "compute" {
  description = "Which compute runs Cerberus: apprunner or ecs_express."
  value       = var.compute
}

output "apprunner_security_group_id" {
  description = "Security group of the compute service (App Runner VPC connector or ECS tasks)."
  value       = module.network.app_security_group_id
}

output "aurora_endpoint" {
  description = "Aurora writer endpoint."
  value       = module.aurora.endpoint
}

output "aurora_cluster_identifier" {
  description = "Aurora cluster identifier."
  value       = module.aurora.cluster_identifier
}

output "valkey_endpoint" {
  description = "Valkey primary endpoint."
  value       = module.valkey.endpoint
}

output "valkey_replication_group_id" {
  description = "Valkey replication group ID."
  value       = module.valkey.replication_group_id
}

output "aws_region" {
  description = "AWS region of the environment."
  value       = var.aws_region
}
