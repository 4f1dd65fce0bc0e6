"""`manage.py bot_instance_manifest <tenant> [--bot NAME] [--rotate] …`: a clinic's AstrBot on Kubernetes.

Prints YAML for `kubectl apply -f -` (anmei.bots.manifests). The bot's token is stored hashed and
shown once, so the Secret can carry it only when it is issued: a new bot is created here, an
existing one needs `--rotate` (its old credentials stop working at once).
"""

from __future__ import annotations

import yaml
from django.core.management.base import BaseCommand, CommandError

from anmei.bots.manifests import BotInstanceSpec, bot_instance_objects, callback_url
from anmei.bots.models import BotInstance
from anmei.bots.services.instances import bot_create, bot_credentials_rotate
from anmei.common.platforms import Platform
from anmei.tenants.models import Tenant


class Command(BaseCommand):
    help = "Render the Kubernetes objects of one tenant's AstrBot instance (creating the bot, or --rotate)."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's slug")
        parser.add_argument("--bot", default="astrbot", help="the bot instance's name (default astrbot)")
        parser.add_argument("--platform", default="wecom", choices=[value for value, _ in Platform.choices])
        parser.add_argument("--rotate", action="store_true", help="issue new credentials for an existing bot")
        parser.add_argument("--namespace", default=None, help="default anmei-bot-<tenant>")
        parser.add_argument("--anmei-namespace", default="anmei")
        parser.add_argument("--anmei-url", default=None, help="default http://anmei-web.<anmei-namespace>.svc:8000")
        parser.add_argument("--anmei-image", default="registry.example.com/anmei:1.0.0", help="has the plugin")
        parser.add_argument("--astrbot-image", default="soulter/astrbot:v4.5.1")
        parser.add_argument("--storage", default="5Gi", help="size of the bot's data volume")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug '{options['tenant']}'")
        namespace = options["namespace"] or f"anmei-bot-{tenant.slug}"
        bot = BotInstance.objects.filter(tenant=tenant, name=options["bot"]).first()
        if bot is None:
            bot, token, secret = bot_create(
                tenant_id=tenant.id,
                name=options["bot"],
                platform=options["platform"],
                callback_url=callback_url(namespace),
            )
            self.stderr.write(f"created bot '{bot.name}' (id {bot.id}) for tenant '{tenant.slug}'")
        elif options["rotate"]:
            issued = bot_credentials_rotate(bot=bot)
            token, secret = issued["token"], issued["secret"]
            self.stderr.write(f"rotated the credentials of bot '{bot.name}' (id {bot.id}): the old ones stop now")
        else:
            raise CommandError(
                f"bot '{bot.name}' exists and its token is shown only once: pass --rotate to issue new credentials"
            )
        spec = BotInstanceSpec(
            tenant_slug=tenant.slug,
            bot_name=bot.name,
            platform=bot.platform,
            namespace=namespace,
            anmei_url=options["anmei_url"] or f"http://anmei-web.{options['anmei_namespace']}.svc:8000",
            anmei_namespace=options["anmei_namespace"],
            anmei_image=options["anmei_image"],
            astrbot_image=options["astrbot_image"],
            token=token,
            secret=secret,
            storage=options["storage"],
        )
        self.stdout.write(yaml.safe_dump_all(bot_instance_objects(spec), sort_keys=False, allow_unicode=True))
