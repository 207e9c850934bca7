variable "name" {
  description = "Repository name, e.g. cerberus-stage."
  type        = string
}

variable "force_delete" {
  description = "Delete the repository with its images on destroy."
  type        = bool
}

variable "max_image_count" {
  description = "Images kept; older ones expire."
  type        = number
}

variable "untagged_image_days" {
  description = "Days before an untagged image expires."
  type        = number
}
