variable "name" {
  description = "Name prefix, e.g. cerberus-stage."
  type        = string
}

variable "limit_usd" {
  description = "Monthly budget in US dollars."
  type        = number
}

variable "alert_emails" {
  description = "Addresses that receive the budget alerts."
  type        = list(string)

  validation {
    condition     = length(var.alert_emails) > 0
    error_message = "alert_emails needs at least one address."
  }
}
