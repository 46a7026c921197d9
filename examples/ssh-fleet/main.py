"""Files for a small fleet: every host gets the MOTD, only the `web` group gets the site config."""

from clockwork.resources import DirectoryResource, FileResource

app_dir = DirectoryResource(name="app", description="Application directory", directory="srv", mode="750")

motd = FileResource(
    name="motd.txt",
    description="Message shown to operators",
    directory="srv/app",
    content="Managed by Clockwork: local edits are reverted.\n",
)

site = FileResource(
    name="site.conf",
    description="Web site settings",
    directory="srv/app",
    content="listen 8080\nroot /srv/app/www\n",
    mode="640",
    hosts=["web"],
)
