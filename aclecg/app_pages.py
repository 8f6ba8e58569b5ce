"""The app's pages after Home, in the order the sidebar lists them: one table that ``app.py``'s navigation, the
tests and the page benchmarks read, so a new page is its file plus one :func:`register_page` call here.

It imports nothing but :mod:`aclecg.registry`, so it loads without Streamlit (tests, benchmarks, the CLI).

>>> [page.url_path for page in app_pages()][:2]
['explorer', 'augmentations']
>>> APP_PAGES.get("sweeps").file
'pages/6_Label_fraction_sweeps.py'
"""

from __future__ import annotations

from dataclasses import dataclass

from aclecg.registry import Registry

__all__ = ["APP_PAGES", "AppPage", "app_pages", "register_page"]


@dataclass(frozen=True)
class AppPage:
    """One page: its URL path (also its registry name), its file (relative to the project folder, or absolute),
    its sidebar title and its Material icon (``""`` for none)."""

    url_path: str
    file: str
    title: str
    icon: str = ""


#: Every page after Home, in registration order (the sidebar's order).
APP_PAGES: Registry[AppPage] = Registry("app page")


def register_page(page: AppPage) -> AppPage:
    """Add ``page`` after the pages registered so far."""
    return APP_PAGES.register(page.url_path, page)


def app_pages() -> list[AppPage]:
    """The registered pages, in the sidebar's order."""
    return [page for _, page in APP_PAGES.items()]


for _page in (
    AppPage("explorer", "pages/1_ECG_explorer.py", "ECG explorer", ":material/monitor_heart:"),
    AppPage("augmentations", "pages/2_Augmentations.py", "Augmentations", ":material/tune:"),
    AppPage("regions", "pages/3_Lead_regions.py", "Lead regions", ":material/hub:"),
    AppPage("pretraining", "pages/4_Pretraining.py", "Pretraining", ":material/model_training:"),
    AppPage("representations", "pages/5_Representations.py", "Representations", ":material/scatter_plot:"),
    AppPage("sweeps", "pages/6_Label_fraction_sweeps.py", "Label-fraction sweeps", ":material/insights:"),
):
    register_page(_page)
