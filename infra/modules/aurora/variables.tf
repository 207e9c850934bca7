variable "name" {
  description = "Name prefix, e.g. cerberus-stage (gives cerberus-stage-aurora-cluster)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the DB subnet group."
  type        = list(string)
}

variable "app_security_group_id" {
  description = "Security group of the compute service, the only one allowed to reach port 5432."
  type        = string
}

variable "engine_version" {
  description = "Aurora PostgreSQL version; 0 ACU (auto-pause) needs 13.15, 14.12, 15.7, 16.3 or later."
  type        = string
}

variable "database_name" {
  description = "Database created in the cluster."
  type        = string
}

variable "master_username" {
  description = "Master user name."
  type        = string
}

variable "master_password" {
  description = "Master password."
  type        = string
  sensitive   = true
}

variable "min_capacity" {
  description = "Lowest ACU; 0 allows auto-pause (scale to zero)."
  type        = number

  validation {
    condition     = var.min_capacity >= 0 && var.min_capacity <= 256
    error_message = "min_capacity must be between 0 and 256 ACU."
  }
}

variable "max_capacity" {
  description = "Highest ACU."
  type        = number

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity <= 256
    error_message = "max_capacity must be between 1 and 256 ACU."
  }
}

variable "seconds_until_auto_pause" {
  description = "Idle seconds before a cluster at 0 ACU pauses (300-86400); sent to AWS only when min_capacity is 0."
  type        = number

  validation {
    condition     = var.seconds_until_auto_pause >= 300 && var.seconds_until_auto_pause <= 86400
    error_message = "seconds_until_auto_pause must be between 300 and 86400."
  }
}

variable "backup_retention_period" {
  description = "Days of automated backups."
  type        = number
}

variable "deletion_protection" {
  description = "Refuse to delete the cluster (production)."
  type        = bool
}

variable "skip_final_snapshot" {
  description = "Delete without a final snapshot (staging)."
  type        = bool
}
