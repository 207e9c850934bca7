output "repository_url" {
  description = "Repository URL (registry/name), without a tag."
  value       = aws_ecr_repository.main.repository_url
}

output "repository_name" {
  description = "Repository name."
  value       = aws_ecr_repository.main.name
}

output "repository_arn" {
  description = "Repository ARN."
  value       = aws_ecr_repository.main.arn
}
