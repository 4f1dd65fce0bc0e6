from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "anmei.automation"
    label = "automation"
    verbose_name = "Registration automation"

    def ready(self) -> None:
        """Start a run for every new customer once their registration commits."""
        from anmei.accounts.services import on_customer_registered
        from anmei.automation.services import on_customer_registered as start_run

        on_customer_registered(start_run)
