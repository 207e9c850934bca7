variable "name" {
  description = "Name prefix, e.g. cerberus-stage (gives cerberus-stage-service)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the VPC connector."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the VPC connector (the one Aurora and Valkey admit)."
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
  description = "App Runner CPU units: 256, 512, 1024, 2048 or 4096."
  type        = string

  validation {
    condition     = contains(["256", "512", "1024", "2048", "4096"], var.cpu)
    error_message = "cpu must be one of 256, 512, 1024, 2048, 4096."
  }
}

variable "memory" {
  description = "App Runner memory in MB: 512, 1024, 2048, 3072, 4096 ..."
  type        = string

  validation {
    condition     = contains(["512", "1024", "2048", "3072", "4096", "6144", "8192", "10240", "12288"], var.memory)
    error_message = "memory must be an App Runner size in MB, e.g. 512 or 1024."
  }
}

variable "min_instances" {
  description = "Instances kept running."
  type        = number
}

variable "max_instances" {
  description = "Most instances auto-scaling starts."
  type        = number
}

variable "max_concurrency" {
  description = "Concurrent requests per instance before App Runner scales out."
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
