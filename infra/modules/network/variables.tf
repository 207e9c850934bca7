variable "name" {
  description = "Name prefix of every resource of the environment, e.g. cerberus-stage."
  type        = string
}
