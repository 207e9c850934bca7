variable "aws_region" {
  description = "AWS region of the state bucket and lock table (the environments' backends use the same)."
  type        = string
  default     = "us-east-1"
}

variable "state_bucket_name" {
  description = "S3 bucket holding the environments' state files (globally unique)."
  type        = string
  default     = "cerberus-mcp-terraform-state"
}

variable "lock_table_name" {
  description = "DynamoDB table holding Terraform state locks."
  type        = string
  default     = "cerberus-terraform-locks"
}
