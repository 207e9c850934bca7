output "service_url" {
  description = "HTTPS URL of the service's load balancer."
  value       = "https://${trimsuffix(trimprefix(aws_ecs_express_gateway_service.main.ingress_paths[0].endpoint, "https://"), "/")}"
}

output "service_arn" {
  description = "ARN of the ECS Express service."
  value       = aws_ecs_express_gateway_service.main.service_arn
}

output "service_name" {
  description = "Name of the service (ECS cluster \"default\")."
  value       = aws_ecs_express_gateway_service.main.service_name
}
