"""Input/output: raw data folders, loaders and result files. Nothing in the numerical core imports this."""

from .atmosphere import GRAVEN2017_ZONE_BANDS, load_atmosphere, load_graven2017, load_hua2013, load_hua2021
from .datadir import DataFolderError, data_file, resolve_data_dir
from .example_sites import load_howland_profile, load_mcfarlane_sites
from .forcing import site_forcing
from .he2016 import load_he2016_layers
from .inventory import covariate_completeness, site_inventory
from .israd import find_israd_dir, read_israd
from .israd_curation import build_israd_tables
from .qa import QA_RULES, write_qa_table
from .sites import DEFAULT_SOURCES, SOURCES, build_site_tables, resolve_sources
from .split import calibration_split, split_all_sources
from .tables import FOUR_TYPES, SiteTables

__all__ = [
    "DEFAULT_SOURCES",
    "FOUR_TYPES",
    "GRAVEN2017_ZONE_BANDS",
    "QA_RULES",
    "SOURCES",
    "DataFolderError",
    "SiteTables",
    "build_israd_tables",
    "build_site_tables",
    "calibration_split",
    "covariate_completeness",
    "data_file",
    "find_israd_dir",
    "load_atmosphere",
    "load_graven2017",
    "load_he2016_layers",
    "load_howland_profile",
    "load_hua2013",
    "load_hua2021",
    "load_mcfarlane_sites",
    "read_israd",
    "resolve_data_dir",
    "resolve_sources",
    "site_forcing",
    "site_inventory",
    "split_all_sources",
    "write_qa_table",
]
