"""Quick start: a directory and two files in this project directory, on @local."""

from clockwork.resources import DirectoryResource, FileResource

site = DirectoryResource(
    name="site",
    description="Where the quick start writes its files",
    directory="build",
    mode="755",
)

index = FileResource(
    name="index.html",
    description="A static home page",
    directory="build/site",
    content="<h1>Hello from Clockwork</h1>\n",
    mode="644",
)

config = FileResource(
    name="app.json",
    description="Application settings, readable by the owner and group only",
    directory="build/site",
    content='{"debug": false, "workers": 4}\n',
    mode="640",
)
