variable "aws_region" {
  description = "AWS region of every resource."
  type        = string
  default     = "us-east-1"
}

variable "compute" {
  description = "Where Cerberus runs: \"apprunner\" (default) or \"ecs_express\" for accounts App Runner no longer admits."
  type        = string
  default     = "apprunner"

  validation {
    condition     = contains(["apprunner", "ecs_express"], var.compute)
    error_message = "compute must be \"apprunner\" or \"ecs_express\"."
  }
}

variable "db_username" {
  description = "Aurora master user name."
  type        = string
}

variable "db_password" {
  description = "Aurora master password (8-128 characters, none of / @ \" or space)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.db_password) >= 8 && length(var.db_password) <= 128 && !can(regex("[/@\" ]", var.db_password))
    error_message = "db_password must be 8-128 characters without /, @, \" or spaces."
  }
}

variable "secret_key" {
  description = "JWT signing key (SECRET_KEY); generate with: openssl rand -hex 32."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.secret_key) >= 32
    error_message = "secret_key must be at least 32 characters (openssl rand -hex 32)."
  }
}

variable "image_tag" {
  description = "Docker image tag to run, e.g. latest or v1.0.0."
  type        = string
  default     = "latest"
}

variable "cors_origins" {
  description = "CORS_ORIGINS as a JSON list, e.g. [\"https://app.example.com\"]."
  type        = string

  validation {
    condition     = can(tolist(jsondecode(var.cors_origins))) && !contains(try(jsondecode(var.cors_origins), ["*"]), "*")
    error_message = "cors_origins must be a JSON list of origins, and production may not use \"*\"."
  }
}

variable "allowed_origins" {
  description = "ALLOWED_ORIGINS as a JSON list: Origin values MCP clients may send (empty admits requests without Origin)."
  type        = string
  default     = "[]"

  validation {
    condition     = can(tolist(jsondecode(var.allowed_origins)))
    error_message = "allowed_origins must be a JSON list."
  }
}

variable "alert_emails" {
  description = "Addresses that receive the budget alerts."
  type        = list(string)
}
