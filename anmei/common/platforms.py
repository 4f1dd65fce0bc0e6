"""The IM platforms a bot can sit on: bots register on one, blacklist entries name one."""

from __future__ import annotations

from django.db import models


class Platform(models.TextChoices):
    WECOM = "wecom", "WeCom (企业微信)"
    WECHAT = "wechat", "WeChat"
    QQ = "qq", "QQ"
    TELEGRAM = "telegram", "Telegram"
    DINGTALK = "dingtalk", "DingTalk"
    FEISHU = "feishu", "Feishu / Lark"
    DISCORD = "discord", "Discord"
    SLACK = "slack", "Slack"
    OTHER = "other", "Other"
