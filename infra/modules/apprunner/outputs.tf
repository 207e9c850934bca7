output "service_url" {
  description = "HTTPS URL of the service."
  value       = "https://${aws_apprunner_service.main.service_url}"
}

output "service_arn" {
  description = "ARN of the App Runner service."
  value       = aws_apprunner_service.main.arn
}

output "service_name" {
  description = "Name of the service (its CloudWatch log group is /aws/apprunner/<name>/<id>/service)."
  value       = aws_apprunner_service.main.service_name
}
