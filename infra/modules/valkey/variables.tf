variable "name" {
  description = "Name prefix, e.g. cerberus-stage (gives cerberus-stage-valkey)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the cache subnet group."
  type        = list(string)
}

variable "app_security_group_id" {
  description = "Security group of the compute service, the only one allowed to reach port 6379."
  type        = string
}

variable "node_type" {
  description = "Cache node type, e.g. cache.t4g.micro."
  type        = string
}

variable "engine_version" {
  description = "Valkey version (major.minor); in-transit encryption needs 7.2 or later."
  type        = string
}

variable "parameter_group_name" {
  description = "Parameter group matching engine_version, e.g. default.valkey8."
  type        = string
}

variable "snapshot_retention_limit" {
  description = "Days of daily snapshots (0 turns them off)."
  type        = number
}
