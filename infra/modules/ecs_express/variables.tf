variable "name" {
  description = "Name prefix, e.g. cerberus-stage (gives cerberus-stage-service)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the tasks (the one Aurora and Valkey admit)."
  type        = string
}

variable "image_repository_url" {
  description = "ECR repository URL, without a tag."
  type        = string
}

variable "image_tag" {
  description = "Image tag to run."
  type        = string
}

variable "container_port" {
  description = "Port Cerberus listens on in the container."
  type        = number
}

variable "cpu" {
  description = "Fargate CPU units: 256, 512, 1024 ..."
  type        = string
}

variable "memory" {
  description = "Fargate memory in MB, valid for the CPU chosen (256 CPU: 512-2048)."
  type        = string
}

variable "min_instances" {
  description = "Tasks kept running."
  type        = number
}

variable "max_instances" {
  description = "Most tasks auto-scaling starts."
  type        = number
}

variable "cpu_target_percent" {
  description = "Average CPU the auto-scaling policy keeps the tasks at."
  type        = number
}

variable "environment" {
  description = "Environment variables that are not secrets."
  type        = map(string)
}

variable "database_url" {
  description = "DATABASE_URL (holds the Aurora password)."
  type        = string
  sensitive   = true
}

variable "redis_url" {
  description = "REDIS_URL (holds the Valkey AUTH token)."
  type        = string
  sensitive   = true
}

variable "secret_key" {
  description = "SECRET_KEY (signs JWTs)."
  type        = string
  sensitive   = true
}
