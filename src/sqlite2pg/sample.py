"""Sample data: a Chinook-shaped SQLite database of any size, and an application-like changer.

``write_sample`` writes a database with exactly the schema of the Chinook sample (same tables,
declared types, NOT NULLs, keys, foreign keys and indexes) filled with generated rows: ``scale``
times Chinook's row count per table, deterministic for a seed, every foreign key valid. Rows
stream from generators into one transaction; nothing table-sized is held in memory.

``apply_changes`` behaves like an application working on such a database (or on any SQLite file
with rowid tables): it inserts, updates and deletes about ``fraction`` of the rows with foreign
keys enforced, in one transaction, so change detection and sync can be exercised and measured.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import random
import re
import secrets
import sqlite3
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from itertools import accumulate
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["CHINOOK_ROWS", "ChangeCounts", "apply_changes", "row_counts", "write_sample"]

Row = tuple[Any, ...]
_T = TypeVar("_T")

# --------------------------------------------------------------------------------------------
# Schema: Chinook's, declared once and rendered the way the original DDL is written.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Col:
    name: str
    type: str
    notnull: bool = False


@dataclass(frozen=True)
class _Spec:
    name: str
    columns: tuple[_Col, ...]
    pk: tuple[str, ...]
    fks: tuple[tuple[str, str, str], ...] = ()  # (column, parent table, parent column)


def _c(name: str, type_: str, notnull: bool = False) -> _Col:
    return _Col(name, type_, notnull)


_INT, _DT, _NUM = "INTEGER", "DATETIME", "NUMERIC(10,2)"


def _nv(n: int) -> str:
    return f"NVARCHAR({n})"


# In Chinook's order (the order of sqlite_master). Foreign keys in declaration order.
_SCHEMA: tuple[_Spec, ...] = (
    _Spec(
        "Album",
        (_c("AlbumId", _INT, True), _c("Title", _nv(160), True), _c("ArtistId", _INT, True)),
        ("AlbumId",),
        (("ArtistId", "Artist", "ArtistId"),),
    ),
    _Spec("Artist", (_c("ArtistId", _INT, True), _c("Name", _nv(120))), ("ArtistId",)),
    _Spec(
        "Customer",
        (
            _c("CustomerId", _INT, True),
            _c("FirstName", _nv(40), True),
            _c("LastName", _nv(20), True),
            _c("Company", _nv(80)),
            _c("Address", _nv(70)),
            _c("City", _nv(40)),
            _c("State", _nv(40)),
            _c("Country", _nv(40)),
            _c("PostalCode", _nv(10)),
            _c("Phone", _nv(24)),
            _c("Fax", _nv(24)),
            _c("Email", _nv(60), True),
            _c("SupportRepId", _INT),
        ),
        ("CustomerId",),
        (("SupportRepId", "Employee", "EmployeeId"),),
    ),
    _Spec(
        "Employee",
        (
            _c("EmployeeId", _INT, True),
            _c("LastName", _nv(20), True),
            _c("FirstName", _nv(20), True),
            _c("Title", _nv(30)),
            _c("ReportsTo", _INT),
            _c("BirthDate", _DT),
            _c("HireDate", _DT),
            _c("Address", _nv(70)),
            _c("City", _nv(40)),
            _c("State", _nv(40)),
            _c("Country", _nv(40)),
            _c("PostalCode", _nv(10)),
            _c("Phone", _nv(24)),
            _c("Fax", _nv(24)),
            _c("Email", _nv(60)),
        ),
        ("EmployeeId",),
        (("ReportsTo", "Employee", "EmployeeId"),),
    ),
    _Spec("Genre", (_c("GenreId", _INT, True), _c("Name", _nv(120))), ("GenreId",)),
    _Spec(
        "Invoice",
        (
            _c("InvoiceId", _INT, True),
            _c("CustomerId", _INT, True),
            _c("InvoiceDate", _DT, True),
            _c("BillingAddress", _nv(70)),
            _c("BillingCity", _nv(40)),
            _c("BillingState", _nv(40)),
            _c("BillingCountry", _nv(40)),
            _c("BillingPostalCode", _nv(10)),
            _c("Total", _NUM, True),
        ),
        ("InvoiceId",),
        (("CustomerId", "Customer", "CustomerId"),),
    ),
    _Spec(
        "InvoiceLine",
        (
            _c("InvoiceLineId", _INT, True),
            _c("InvoiceId", _INT, True),
            _c("TrackId", _INT, True),
            _c("UnitPrice", _NUM, True),
            _c("Quantity", _INT, True),
        ),
        ("InvoiceLineId",),
        (("InvoiceId", "Invoice", "InvoiceId"), ("TrackId", "Track", "TrackId")),
    ),
    _Spec("MediaType", (_c("MediaTypeId", _INT, True), _c("Name", _nv(120))), ("MediaTypeId",)),
    _Spec("Playlist", (_c("PlaylistId", _INT, True), _c("Name", _nv(120))), ("PlaylistId",)),
    _Spec(
        "PlaylistTrack",
        (_c("PlaylistId", _INT, True), _c("TrackId", _INT, True)),
        ("PlaylistId", "TrackId"),
        (("PlaylistId", "Playlist", "PlaylistId"), ("TrackId", "Track", "TrackId")),
    ),
    _Spec(
        "Track",
        (
            _c("TrackId", _INT, True),
            _c("Name", _nv(200), True),
            _c("AlbumId", _INT),
            _c("MediaTypeId", _INT, True),
            _c("GenreId", _INT),
            _c("Composer", _nv(220)),
            _c("Milliseconds", _INT, True),
            _c("Bytes", _INT),
            _c("UnitPrice", _NUM, True),
        ),
        ("TrackId",),
        (
            ("AlbumId", "Album", "AlbumId"),
            ("GenreId", "Genre", "GenreId"),
            ("MediaTypeId", "MediaType", "MediaTypeId"),
        ),
    ),
)

# (index, table, column), in Chinook's order.
_INDEXES: tuple[tuple[str, str, str], ...] = (
    ("IFK_AlbumArtistId", "Album", "ArtistId"),
    ("IFK_CustomerSupportRepId", "Customer", "SupportRepId"),
    ("IFK_EmployeeReportsTo", "Employee", "ReportsTo"),
    ("IFK_InvoiceCustomerId", "Invoice", "CustomerId"),
    ("IFK_InvoiceLineInvoiceId", "InvoiceLine", "InvoiceId"),
    ("IFK_InvoiceLineTrackId", "InvoiceLine", "TrackId"),
    ("IFK_PlaylistTrackPlaylistId", "PlaylistTrack", "PlaylistId"),
    ("IFK_PlaylistTrackTrackId", "PlaylistTrack", "TrackId"),
    ("IFK_TrackAlbumId", "Track", "AlbumId"),
    ("IFK_TrackGenreId", "Track", "GenreId"),
    ("IFK_TrackMediaTypeId", "Track", "MediaTypeId"),
)

#: Rows per table in the Chinook sample; ``scale`` multiplies these.
CHINOOK_ROWS: Mapping[str, int] = {
    "Album": 347,
    "Artist": 275,
    "Customer": 59,
    "Employee": 8,
    "Genre": 25,
    "Invoice": 412,
    "InvoiceLine": 2240,
    "MediaType": 5,
    "Playlist": 18,
    "PlaylistTrack": 8715,
    "Track": 3503,
}

# Parents before children: the order rows are written in.
_LOAD_ORDER = (
    "Artist",
    "Album",
    "Genre",
    "MediaType",
    "Track",
    "Playlist",
    "PlaylistTrack",
    "Employee",
    "Customer",
    "Invoice",
    "InvoiceLine",
)

UPDATED_AT = "updated_at"


def _create_table_sql(spec: _Spec, updated_at: bool) -> str:
    lines = [f"    [{c.name}] {c.type}{'  NOT NULL' if c.notnull else ''}" for c in spec.columns]
    if updated_at:
        lines.append(f"    [{UPDATED_AT}] DATETIME  NOT NULL")
    pk = ", ".join(f"[{c}]" for c in spec.pk)
    lines.append(f"    CONSTRAINT [PK_{spec.name}] PRIMARY KEY  ({pk})")
    lines.extend(
        f"    FOREIGN KEY ([{col}]) REFERENCES [{parent}] ([{pcol}]) \n"
        "\t\tON DELETE NO ACTION ON UPDATE NO ACTION"
        for col, parent, pcol in spec.fks
    )
    return f"CREATE TABLE [{spec.name}]\n(\n" + ",\n".join(lines) + "\n)"


def _targets(scale: float) -> dict[str, int]:
    _check_scale(scale)
    return {t: max(1, round(n * scale)) for t, n in CHINOOK_ROWS.items()}


def row_counts(scale: float = 1.0) -> dict[str, int]:
    """Rows per table ``write_sample`` writes at ``scale``: Chinook's times ``scale``, rounded,
    at least one. Below a scale of about 0.3 PlaylistTrack gets fewer: its few playlists
    cannot hold that many different tracks."""
    counts = _targets(scale)
    tracks = counts["Track"]
    parts = _Partition(counts["PlaylistTrack"], counts["Playlist"], _PLAYLIST_WEIGHTS)
    if parts.largest() > tracks:
        counts["PlaylistTrack"] = sum(min(parts.size(p), tracks) for p in range(parts.parts))
    return counts


def _check_scale(scale: float) -> None:
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number above 0, not {scale!r}")


# --------------------------------------------------------------------------------------------
# Vocabulary: enough variety to look like a music store's data, with non-ASCII names.
# --------------------------------------------------------------------------------------------
# Word lists are laid out by hand, several entries a line.
# fmt: off
_FIRST = (
    "Luís", "Leonie", "François", "Bjørn", "František", "Helena", "Astrid", "Daan", "Kara",
    "Eduardo", "Alexandre", "Roberto", "Fernanda", "Mark", "Jennifer", "Frank", "Jack",
    "Michelle", "Tim", "Dan", "Kathy", "Heather", "John", "Victor", "Richard", "Patrick",
    "Julia", "Robert", "Edward", "Martha", "Aaron", "Ellie", "João", "Madalena", "Hannah",
    "Fynn", "Niklas", "Camille", "Dominique", "Marc", "Wyatt", "Isabelle", "Terhi", "Ladislav",
    "Hugh", "Lucas", "Johannes", "Stanisław", "Enrique", "Joakim", "Emma", "Phil", "Steve",
    "Diego", "Luis", "Manoj", "Puja", "Andrew", "Nancy", "Jane", "Margaret", "Steven",
    "Michael", "Laura", "Søren", "Zoë", "Chloé", "Björn", "Håkon", "Ingrid", "Sebastián",
    "Inés", "Mónica", "Çağla", "Zoltán", "Agnieszka", "Łukasz", "Dorothée", "Renée", "Jürgen",
    "Ólafur", "Siobhán", "Aoife", "Noémie", "Ana", "Maria", "José", "Ahmed", "Yuki", "Wei",
    "Priya", "Aditya", "Olga", "Dmitri", "Ewa", "Nikolaj", "Antônio", "Grace", "Liam", "Noah",
)
_LAST = (
    "Gonçalves", "Köhler", "Tremblay", "Hansen", "Wichterlová", "Holý", "Gruber", "Peeters",
    "Nielsen", "Martins", "Rocha", "Almeida", "Ramos", "Philips", "Peterson", "Harris",
    "Smith", "Brooks", "Goyer", "Miller", "Chase", "Leacock", "Gordon", "Ralston", "Stevens",
    "Cunningham", "Gray", "Barnett", "Brown", "Francis", "Silk", "Mitchell", "Sullivan",
    "Fernandes", "Sampaio", "Schneider", "Zimmermann", "Schröder", "Bernard", "Lefebvre",
    "Dubois", "Girard", "Mercier", "Hämäläinen", "Kovács", "O'Reilly", "Mancini",
    "Van der Berg", "Wójcik", "Muñoz", "Johansson", "Jones", "Hughes", "Murray", "Taylor",
    "Gutiérrez", "Rojas", "Pareek", "Srivastava", "Adams", "Edwards", "Peacock", "Park",
    "Johnson", "King", "Callahan", "Øvergaard", "Dvořák", "Nguyễn", "Müller", "Łęcki",
    "García", "Pérez", "Ibáñez", "Sørensen", "Åberg", "Lindqvist", "Yılmaz", "Szabó",  # noqa: RUF001
    "Nakamura", "Chen", "Kumar", "Ivanova", "Kowalski", "Rossi", "Ferreira", "Costa",
    "Dupont", "Moreau", "Svensson", "Jensen", "Novák", "Horváth", "Popescu", "Fischer",
)
_COMPANIES = (
    "Embraer - Empresa Brasileira de Aeronáutica S.A.", "JetBrains s.r.o.", "Woodstock Discos",
    "Banco do Brasil S.A.", "Riotur", "Telus", "Rogers Canada", "Google Inc.",
    "Microsoft Corporation", "Apple Inc.", "Nordisk Lyd AS", "Müller & Söhne GmbH",
    "Éditions Musicales Lumière", "Café Tacvba Records", "Sonora Distribuidora Ltda.",
    "Harbour Light Studios", "Kafka Kultur s.r.o.", "Ääni ja Kuva Oy", "Blue Note Trading Co.",
    "Vinilo y Cía. S.L.", "Pacific Sound Supply", "Maple Leaf Media", "Red Kite Analytics Ltd",
)
_ADJ = (
    "Black", "Blue", "Broken", "Burning", "Electric", "Endless", "Golden", "Hollow", "Lonely",
    "Midnight", "Silent", "Wild", "Velvet", "Crimson", "Restless", "Sweet", "Fading", "Hidden",
    "Distant", "Frozen", "Holy", "Lost", "Neon", "Savage", "Secret", "Strange", "Twisted",
    "Little", "Big", "Last", "First", "Final", "Heavy", "Bright", "Dark", "Cosmic", "Quiet",
)
_NOUN = (
    "Heart", "Fire", "Rain", "Night", "Road", "River", "Dream", "Stone", "Shadow", "Sky",
    "Train", "Highway", "Angel", "Thunder", "Ocean", "Mirror", "Garden", "Machine", "Storm",
    "Ghost", "Moon", "Sun", "Star", "Wolf", "Rose", "City", "Island", "Window", "Summer",
    "Winter", "Heaven", "Wire", "Echo", "Horizon", "Saudade", "Coração", "Mistério", "Canção",
    "Noite", "Lágrima", "Corazón", "Mañana", "Café", "Déjà Vu", "Fjäril", "Sehnsucht", "Straße",
)
_VERB = (
    "Running", "Dancing", "Falling", "Waiting", "Walking", "Burning", "Dreaming", "Flying",
    "Chasing", "Breaking", "Calling", "Crying", "Rolling", "Shining", "Holding", "Losing",
)
_PREP = ("In", "On", "Through", "Under", "With")
_TRACK_SUFFIX = (
    " (Live)", " (Remastered)", " (Acoustic)", " [Demo]", " (Radio Edit)", " Pt. 2",
    " (Instrumental)", " - Reprise", " (Ao Vivo)", " (Extended Mix)",
)
_ALBUM_SUFFIX = (
    " [Disc 1]", " [Disc 2]", " (Deluxe Edition)", " [Live]", ": Greatest Hits",
    " (Remastered)", " Vol. 1", " Vol. 2", " - Acústico", " (Bonus Tracks)",
)
_BAND_SUFFIX = ("", "s", " Project", " Collective", " Trio")
_WORKS = (
    "Symphony No. {n} in {k}", "Piano Concerto No. {n} in {k}", "String Quartet No. {n}",
    "Sonata in {k}, Op. {n}", "Suite No. {n}: Prélude", "Requiem in {k}",
)
_KEYS = ("C major", "D minor", "E-flat major", "G minor", "A major", "B-flat minor", "F major")
_CLASSICAL = (
    "Bach", "Mozart", "Beethoven", "Chopin", "Dvořák", "Sibelius", "Tchaikovsky", "Grieg",
    "Mahler", "Ravel", "Fauré", "Villa-Lobos", "Bartók", "Janáček", "Satie", "Händel",
)
_ORCHESTRA_CITY = (
    "Boston", "London", "Berlin", "Wien", "São Paulo", "Montréal", "Zürich", "København",
    "Göteborg", "Kraków", "Praha", "Budapest", "Chicago", "Helsinki",
)
_ARTIST_EXTRA = (
    "Motörhead Revival", "Sigur Rós", "Björk Guðmundsdóttir", "Mötley Crew", "Céu", "Titãs",
    "Mônica Marianno", "Os Mutantes", "Kino (Кино)", "Μίκης Θεοδωράκης", "坂本龍一",
    "Ensemble Ñandutí", "Les Négresses Vertes", "Blåmusa", "Þursaflokkurinn",
)

_GENRES = (
    "Rock", "Jazz", "Metal", "Alternative & Punk", "Rock And Roll", "Blues", "Latin", "Reggae",
    "Pop", "Soundtrack", "Bossa Nova", "Easy Listening", "Heavy Metal", "R&B/Soul",
    "Electronica/Dance", "World", "Hip Hop/Rap", "Science Fiction", "TV Shows",
    "Sci Fi & Fantasy", "Drama", "Comedy", "Alternative", "Classical", "Opera",
)
# Tracks per genre in Chinook: how often an audio album is of that genre ...
_GENRE_WEIGHTS = (
    1297, 130, 374, 332, 12, 81, 579, 58, 48, 43, 15, 24, 28, 61, 30, 28, 35, 0, 0, 0, 0, 0,
    40, 74, 1,
)
# ... and a video album (Science Fiction, TV Shows, Sci Fi & Fantasy, Drama, Comedy).
_VIDEO_GENRE_WEIGHTS = (0,) * 17 + (13, 93, 26, 64, 17) + (0, 0, 0)
_GENRE_PREFIX = (
    "Progressive", "Neo", "Post", "Indie", "Experimental", "Nordic", "Latin", "Contemporary",
    "Traditional", "Modern", "Symphonic", "Melodic", "Psychedelic", "Tropical", "Afro",
    "Brazilian", "Québécois", "Español", "Deutscher", "Lo-fi",
)
_MEDIA = (
    "MPEG audio file", "Protected AAC audio file", "Protected MPEG-4 video file",
    "Purchased AAC audio file", "AAC audio file",
)
_MEDIA_WEIGHTS = (3034, 237, 214, 7, 11)  # tracks per media type in Chinook
_VIDEO = 3  # the media kind sold at 1.99
_MEDIA_VARIANT = ("HD", "48 kHz", "lossless", "v2", "mobile", "surround", "4K", "low bitrate")
_PLAYLISTS = (
    "Music", "Movies", "TV Shows", "Audiobooks", "90’s Music", "Audiobooks", "Movies", "Music",  # noqa: RUF001
    "Music Videos", "TV Shows", "Brazilian Music", "Classical", "Classical 101 - Deep Cuts",
    "Classical 101 - Next Steps", "Classical 101 - The Basics", "Grunge", "Heavy Metal Classic",
    "On-The-Go 1",
)
# Chinook's playlist sizes: the shape every block of 18 playlists repeats.
_PLAYLIST_WEIGHTS = (3290, 0, 213, 0, 1477, 0, 0, 3290, 1, 213, 39, 75, 25, 25, 25, 15, 26, 1)
# Chinook's lines per invoice repeat 2, 4, 6, 9, 14, 1, 2.
_INVOICE_LINE_WEIGHTS = (2, 4, 6, 9, 14, 1, 2)
# Tracks per album: varied like Chinook's (1 to 57, about 10 on average).
_ALBUM_TRACK_WEIGHTS = (10, 14, 8, 12, 1, 11, 9, 16, 10, 13, 2, 25, 8, 11, 9, 6, 12, 14, 5, 7)
# Employees come in blocks of 8 shaped like Chinook's staff.
_EMPLOYEE_TITLES = (
    "General Manager", "Sales Manager", "Sales Support Agent", "Sales Support Agent",
    "Sales Support Agent", "IT Manager", "IT Staff", "IT Staff",
)
_EMPLOYEE_BOSS = (0, 0, 1, 1, 1, 0, 5, 5)  # the position in the block each position reports to
_EMPLOYEE_CITIES = (("Calgary", "T2P"), ("Edmonton", "T5K"), ("Lethbridge", "T1K"))
_EMPLOYEE_STREETS = ("8 Ave SW", "6 Ave SW", "7 ST NW", "Jasper Ave NW", "5 Ave N")

# Per country: weight, cities with state, postal pattern, phone pattern, streets, street format.
# Pattern characters: '#' a digit, 'A' a capital letter. A None postal pattern stores NULL.
_Country = tuple[
    str, int, tuple[tuple[str, str | None], ...], str | None, str, tuple[str, ...], str
]
_COUNTRIES: tuple[_Country, ...] = (
    (
        "USA", 13,
        (("Mountain View", "CA"), ("Redmond", "WA"), ("New York", "NY"), ("Cupertino", "CA"),
         ("Reno", "NV"), ("Orlando", "FL"), ("Boston", "MA"), ("Chicago", "IL"),
         ("Madison", "WI"), ("Fort Worth", "TX"), ("Tucson", "AZ"), ("Salt Lake City", "UT")),
        "#####-####", "+1 (###) ###-####",
        ("Broadway", "Salem Street", "E Superior Street", "N. Frances Street", "W Berry Street",
         "Del Medio Avenue", "S Orange Ave", "W 4th Street", "Park Ave"),
        "{n} {s}",
    ),
    (
        "Canada", 8,
        (("Montréal", "QC"), ("Edmonton", "AB"), ("Vancouver", "BC"), ("Toronto", "ON"),
         ("Ottawa", "ON"), ("Halifax", "NS"), ("Winnipeg", "MB"), ("Yellowknife", "NT"),
         ("Québec", "QC")),
        "A#A #A#", "+1 (###) ###-####",
        ("rue Bélanger", "W Pender Street", "Dundas Street West", "Elgin Street",
         "Chain Lake Drive", "Osborne Street", "Jasper Ave NW", "rue Saint-Denis"),
        "{n} {s}",
    ),
    (
        "Brazil", 5,
        (("São Paulo", "SP"), ("Rio de Janeiro", "RJ"), ("Brasília", "DF"),
         ("São José dos Campos", "SP"), ("Belo Horizonte", "MG")),
        "#####-###", "+55 (##) ####-####",
        ("Av. Paulista", "Rua Dr. Falcão Filho", "Praça Pio X", "Av. Brigadeiro Faria Lima",
         "Rua da Consolação", "Av. Atlântica"),
        "{s}, {n}",
    ),
    (
        "France", 5,
        (("Paris", None), ("Lyon", None), ("Bordeaux", None), ("Dijon", None), ("Nîmes", None)),
        "#####", "+33 0# ## ## ## ##",
        ("Rue Milton", "Rue Hanovre", "Place Bellecour", "Place Louis Barthou",
         "Rue Jouvence", "Boulevard Saint-Germain"),
        "{n}, {s}",
    ),
    (
        "Germany", 4,
        (("Berlin", None), ("Stuttgart", None), ("Frankfurt", None), ("München", None),
         ("Köln", None)),
        "#####", "+49 0### #######",
        ("Theodor-Heuss-Straße", "Tauentzienstraße", "Berger Straße", "Barbarossastraße",
         "Königsallee", "Schloßstraße"),
        "{s} {n}",
    ),
    (
        "United Kingdom", 3, (("London", None), ("Edinburgh", None), ("Manchester", None)),
        "AA## #AA", "+44 020 #### ####",
        ("Hoxton Street", "Lupus St", "Raeburn Pl", "Deansgate"), "{n} {s}",
    ),
    (
        "Portugal", 2, (("Lisbon", None), ("Porto", None)), None, "+351 (###) ###-###",
        ("Rua da Assunção", "Rua dos Campeões Europeus de Viena", "Avenida da Liberdade"),
        "{s} {n}",
    ),
    (
        "Czech Republic", 2, (("Prague", None), ("Brno", None)), "#####", "+420 # #### ####",
        ("Klanova", "Rilská", "Na Příkopě", "Údolní"), "{s} {n}",
    ),
    (
        "India", 2, (("Delhi", None), ("Bangalore", None), ("Mumbai", None)), "######",
        "+91 0### ########", ("Community Centre", "Raj Bhavan Road", "MG Road"), "{n},{s}",
    ),
    (
        "Norway", 1, (("Oslo", None), ("Bergen", None)), "####", "+47 ## ## ## ##",
        ("Ullevålsveien", "Bryggen", "Karl Johans gate"), "{s} {n}",
    ),
    (
        "Sweden", 1, (("Stockholm", None), ("Göteborg", None)), "#####", "+46 08-### ## ##",
        ("Celsiusg.", "Drottninggatan", "Götgatan"), "{s} {n}",
    ),
    (
        "Spain", 1, (("Madrid", None), ("Sevilla", None)), "#####", "+34 ### ### ###",
        ("C/ San Bernardo", "Calle de Alcalá", "Avenida de la Constitución"), "{s} {n}",
    ),
    (
        "Hungary", 1, (("Budapest", None),), "H-####", "+36 1 ### ####",
        ("Erzsébet krt.", "Andrássy út", "Váci utca"), "{s} {n}.",
    ),
    (
        "Finland", 1, (("Helsinki", None), ("Tampere", None)), "#####", "+358 09 ### ####",
        ("Porthaninkatu", "Mannerheimintie", "Hämeenkatu"), "{s} {n}",
    ),
    (
        "Chile", 1, (("Santiago", None), ("Valparaíso", None)), None, "+56 (0)2 ### ####",
        ("Calle Lira", "Avenida Providencia"), "{s}, {n}",
    ),
    (
        "Australia", 1, (("Sidney", "NSW"), ("Melbourne", "VIC")), "####", "+61 (0#) #### ####",
        ("Bourke Street", "George Street", "Flinders Lane"), "{n} {s}",
    ),
    (
        "Ireland", 1, (("Dublin", "Dublin"),), None, "+353 01 #######",
        ("Chatham Street", "Grafton Street"), "{n} {s}",
    ),
    (
        "Italy", 1, (("Rome", "RM"), ("Milano", "MI")), "#####", "+39 06 ########",
        ("Via Degli Scipioni", "Via del Corso", "Corso Buenos Aires"), "{s}, {n}",
    ),
)
_EMAIL_DOMAINS = (
    "gmail.com", "yahoo.com", "hotmail.com", "apple.com", "uol.com.br", "shaw.ca", "yahoo.de",
    "surfeu.de", "wp.pl", "sapo.pt", "yahoo.fr", "jubii.dk", "rediff.com", "comcast.net",
    "aol.com", "outlook.com", "proton.me", "web.de", "free.fr", "seznam.cz",
)
# fmt: on

_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ß": "ss", "ł": "l", "Ł": "L", "æ": "ae", "đ": "d"})


def _ascii_fold(text: str) -> str:
    """'Stanisław Wójcik' -> 'stanislawwojcik': lower-case letters and digits for an address."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum()).lower()


_FIRST_ASCII = tuple(_ascii_fold(n) for n in _FIRST)
_LAST_ASCII = tuple(_ascii_fold(n) for n in _LAST)


# --------------------------------------------------------------------------------------------
# Small pure helpers.
# --------------------------------------------------------------------------------------------

_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _salt(seed: int, purpose: str) -> int:
    digest = hashlib.sha256(f"sqlite2pg-sample:{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _rng(seed: int, purpose: str) -> random.Random:
    return random.Random(_salt(seed, purpose))


def _cumulative(weights: Sequence[int]) -> tuple[list[int], int]:
    cum = list(accumulate(weights))
    return cum, cum[-1]


def _weighted(cum: list[int], total: int, u: float) -> int:
    """1-based index picked by ``u`` in [0, 1) from cumulative weights."""
    return bisect_right(cum, int(u * total)) + 1


def _lookup_id(kind: int, rows: int, base: int, bits: int) -> int:
    """An id of a lookup row of ``kind`` (1..base) when the table repeats its base rows."""
    if kind > rows:
        return (kind - 1) % rows + 1
    return kind + base * (bits % ((rows - kind) // base + 1))


def _fill(pattern: str, bits: int) -> str:
    """Replace '#' with digits and 'A' with letters taken from ``bits``."""
    out = []
    for ch in pattern:
        if ch == "#":
            out.append(chr(48 + bits % 10))
            bits //= 10
        elif ch == "A":
            out.append(chr(65 + bits % 26))
            bits //= 26
        else:
            out.append(ch)
    return "".join(out)


def _day_text(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat() + " 00:00:00"


class _Partition:
    """``items`` consecutive items split over ``parts`` owners in proportion to a repeating cycle
    of weights, exactly (the sizes add up to ``items``), with O(1) memory: ``start``, ``size``
    and ``owner`` are pure functions, so two generators can agree on who owns what."""

    def __init__(self, items: int, parts: int, cycle: Sequence[int]) -> None:
        self.items, self.parts = items, parts
        self._steps = tuple(cycle)
        self._prefix = [0, *accumulate(cycle)]
        self._len, self._sum = len(cycle), self._prefix[-1]
        self._total = self._weight_before(parts)

    def _weight_before(self, part: int) -> int:
        q, r = divmod(part, self._len)
        return q * self._sum + self._prefix[r]

    def start(self, part: int) -> int:
        return self._weight_before(part) * self.items // self._total

    def size(self, part: int) -> int:
        return self.start(part + 1) - self.start(part)

    def largest(self) -> int:
        """An upper bound of the largest part."""
        return max(self._steps) * self.items // self._total + 1

    def owner(self, item: int) -> int:
        """The part whose range holds ``item`` (0-based)."""
        limit = ((item + 1) * self._total - 1) // self.items
        q, r = divmod(limit, self._sum)
        part = q * self._len + bisect_right(self._prefix, r) - 1
        return min(part, self.parts - 1)


# --------------------------------------------------------------------------------------------
# Values.
# --------------------------------------------------------------------------------------------


class _Words:
    """Generators of names and titles. Each takes ``r``, a ``random.random``-like function."""

    @staticmethod
    def pick(r: Callable[[], float], seq: Sequence[_T]) -> _T:
        return seq[int(r() * len(seq))]

    @classmethod
    def title(cls, r: Callable[[], float]) -> str:
        p = cls.pick
        u = r()
        if u < 0.3:
            return f"{p(r, _ADJ)} {p(r, _NOUN)}"
        if u < 0.45:
            return f"{p(r, _NOUN)} Of The {p(r, _NOUN)}"
        if u < 0.6:
            return f"{p(r, _VERB)} {p(r, _PREP)} The {p(r, _NOUN)}"
        if u < 0.7:
            return f"{p(r, _NOUN)}"
        if u < 0.8:
            return f"{p(r, _VERB)} {p(r, _ADJ)}"
        if u < 0.9:
            return f"{p(r, _ADJ)} {p(r, _NOUN)} {p(r, _NOUN)}"
        return f"The {p(r, _ADJ)} {p(r, _NOUN)}"

    @classmethod
    def classical(cls, r: Callable[[], float]) -> str:
        work = cls.pick(r, _WORKS).format(n=1 + int(r() * 40), k=cls.pick(r, _KEYS))
        return f"{cls.pick(r, _CLASSICAL)}: {work}"

    @classmethod
    def person(cls, r: Callable[[], float]) -> str:
        return f"{cls.pick(r, _FIRST)} {cls.pick(r, _LAST)}"

    @classmethod
    def artist(cls, r: Callable[[], float]) -> str:
        p = cls.pick
        u = r()
        if u < 0.3:
            return cls.person(r)
        if u < 0.55:
            return f"The {p(r, _ADJ)} {p(r, _NOUN)}s"
        if u < 0.7:
            return f"{p(r, _ADJ)} {p(r, _NOUN)}"
        if u < 0.78:
            return f"{cls.person(r)} & The {p(r, _NOUN)}s"
        if u < 0.86:
            return f"{p(r, _ORCHESTRA_CITY)} Symphony Orchestra & {cls.person(r)}"
        if u < 0.94:
            return f"{p(r, _NOUN)}{p(r, _BAND_SUFFIX)}"
        return p(r, _ARTIST_EXTRA)

    @classmethod
    def album(cls, r: Callable[[], float]) -> str:
        u = r()
        if u < 0.08:
            return cls.classical(r)
        title = cls.title(r)
        return title + cls.pick(r, _ALBUM_SUFFIX) if u > 0.85 else title

    @classmethod
    def track(cls, r: Callable[[], float]) -> str:
        u = r()
        if u < 0.05:
            return cls.classical(r)
        title = cls.title(r)
        return title + cls.pick(r, _TRACK_SUFFIX) if u > 0.9 else title

    @classmethod
    def composer(cls, r: Callable[[], float]) -> str:
        u = r()
        if u < 0.45:
            return cls.person(r)
        if u < 0.7:
            return f"{cls.person(r)}, {cls.person(r)} & {cls.person(r)}"
        if u < 0.9:
            return f"{cls.pick(r, _LAST)}/{cls.pick(r, _LAST)}"
        return f"{cls.person(r)} & {cls.person(r)}"

    @classmethod
    def playlist(cls, r: Callable[[], float], genre: str) -> str:
        u = r()
        if u < 0.3:
            return f"{genre} Essentials"
        if u < 0.5:
            return f"{cls.pick(r, _ADJ)} {cls.pick(r, _NOUN)} Mix"
        if u < 0.65:
            return f"{cls.pick(r, _FIRST)}'s Favourites"
        if u < 0.8:
            return f"On-The-Go {1 + int(r() * 99)}"
        return f"{cls.pick(r, _PLAYLISTS)} {1 + int(r() * 9)}"

    @classmethod
    def email(cls, r: Callable[[], float], first: str, last: str) -> str:
        f, s = _ascii_fold(first) or "user", _ascii_fold(last) or "mail"
        u = r()
        local = (
            f"{f}.{s}"
            if u < 0.4
            else f"{f[0]}{s}"
            if u < 0.6
            else f"{f}_{s}"
            if u < 0.75
            else f"{f}{s}{1 + int(r() * 99)}"
        )
        return f"{local[:40]}@{cls.pick(r, _EMAIL_DOMAINS)}"

    @classmethod
    def phone(cls, r: Callable[[], float]) -> str:
        return _fill(cls.pick(r, _COUNTRIES)[4], int(r() * 1e15))

    @staticmethod
    def genre_name(genre_id: int) -> str:
        copy, base = divmod(genre_id - 1, len(_GENRES))
        name = _GENRES[base]
        if copy == 0:
            return name
        prefix = _GENRE_PREFIX[(copy - 1) % len(_GENRE_PREFIX)]
        round_ = (copy - 1) // len(_GENRE_PREFIX)
        return f"{prefix} {name}" + (f" {round_ + 1}" if round_ else "")

    @staticmethod
    def media_name(media_id: int) -> str:
        copy, base = divmod(media_id - 1, len(_MEDIA))
        if copy == 0:
            return _MEDIA[base]
        variant = _MEDIA_VARIANT[(copy - 1) % len(_MEDIA_VARIANT)]
        round_ = (copy - 1) // len(_MEDIA_VARIANT)
        return f"{_MEDIA[base]} ({variant}{f' {round_ + 1}' if round_ else ''})"


# --------------------------------------------------------------------------------------------
# The generator.
# --------------------------------------------------------------------------------------------


class _Generator:
    """Row generators for one (scale, seed). Cross-table facts (a customer's address, an
    album's media type, a track's price) are pure functions of ids, so no table is held."""

    def __init__(self, counts: Mapping[str, int], seed: int) -> None:
        self.n = dict(counts)
        self.seed = seed
        self.album_tracks = _Partition(self.n["Track"], self.n["Album"], _ALBUM_TRACK_WEIGHTS)
        self.invoice_lines = _Partition(
            self.n["InvoiceLine"], self.n["Invoice"], _INVOICE_LINE_WEIGHTS
        )
        self.playlist_tracks = _Partition(
            self.n["PlaylistTrack"], self.n["Playlist"], _PLAYLIST_WEIGHTS
        )
        self._album_salt = _salt(seed, "album")
        self._customer_salt = _salt(seed, "customer-address")
        self._media_cum = _cumulative(_MEDIA_WEIGHTS)
        self._genre_cum = _cumulative(_GENRE_WEIGHTS)
        self._video_genre_cum = _cumulative(_VIDEO_GENRE_WEIGHTS)
        self._country_cum = _cumulative([c[1] for c in _COUNTRIES])

    def rng(self, table: str) -> random.Random:
        return _rng(self.seed, table)

    # Album facts shared by Track (its rows) and InvoiceLine (the price of a track).

    def _media_kind(self, h: int) -> int:
        """An album's media kind 1..5 from its hash; only kinds the MediaType table has."""
        kind = _weighted(*self._media_cum, (h & 0xFFFF) / 65536)
        rows = self.n["MediaType"]
        return kind if kind <= rows else (kind - 1) % rows + 1

    def album_facts(self, album_id: int) -> tuple[int, int, int]:
        """(media kind 1..5, MediaTypeId, GenreId) of an album."""
        h = _mix(self._album_salt ^ album_id)
        kind = self._media_kind(h)
        cum = self._video_genre_cum if kind == _VIDEO else self._genre_cum
        genre_kind = _weighted(*cum, ((h >> 16) & 0xFFFF) / 65536)
        media = _lookup_id(kind, self.n["MediaType"], len(_MEDIA), h >> 32)
        genre = _lookup_id(genre_kind, self.n["Genre"], len(_GENRES), h >> 40)
        return kind, media, genre

    def track_price(self, track_id: int) -> float:
        """The UnitPrice ``track`` gave the track: 1.99 for video, 0.99 for audio."""
        album = self.album_tracks.owner(track_id - 1) + 1
        return 1.99 if self._media_kind(_mix(self._album_salt ^ album)) == _VIDEO else 0.99

    def _customer_hash(self, customer_id: int) -> tuple[int, _Country]:
        h = _mix(self._customer_salt ^ customer_id)
        return h, _COUNTRIES[_weighted(*self._country_cum, (h & 0xFFFF) / 65536) - 1]

    def customer_address(self, customer_id: int) -> tuple[str, str, str | None, str, str | None]:
        """(Address, City, State, Country, PostalCode) of a customer; invoices bill to it."""
        h, (name, _, cities, postal, _, streets, fmt) = self._customer_hash(customer_id)
        city, state = cities[(h >> 16) % len(cities)]
        address = fmt.format(n=1 + (h >> 32) % 2500, s=streets[(h >> 24) % len(streets)])
        return address, city, state, name, _fill(postal, _mix(h)) if postal else None

    def customer_phone(self, customer_id: int) -> str:
        h, country = self._customer_hash(customer_id)
        return _fill(country[4], _mix(h) >> 20)

    # Tables.

    def artist(self) -> Iterator[Row]:
        r = self.rng("Artist").random
        artist = _Words.artist
        for i in range(1, self.n["Artist"] + 1):
            yield (i, artist(r))

    def album(self) -> Iterator[Row]:
        r = self.rng("Album").random
        artists = self.n["Artist"]
        album = _Words.album
        for i in range(1, self.n["Album"] + 1):
            yield (i, album(r)[:160], 1 + int(r() * artists))

    def genre(self) -> Iterator[Row]:
        return ((i, _Words.genre_name(i)) for i in range(1, self.n["Genre"] + 1))

    def media_type(self) -> Iterator[Row]:
        return ((i, _Words.media_name(i)) for i in range(1, self.n["MediaType"] + 1))

    def track(self) -> Iterator[Row]:
        r = self.rng("Track").random
        track, composer = _Words.track, _Words.composer
        parts = self.album_tracks
        for a in range(parts.parts):
            start, size = parts.start(a), parts.size(a)
            if not size:
                continue
            album_id = a + 1
            kind, media, genre = self.album_facts(album_id)
            video = kind == _VIDEO
            price = 1.99 if video else 0.99
            rate = 180.0 if video else (31.5 if kind in (1, 4) else 15.5)
            band = composer(r)
            for t in range(start + 1, start + size + 1):
                if video:
                    ms = 1_200_000 + int(r() * 1_800_000)
                else:
                    ms = 60_000 + int(r() * 240_000 + r() * 240_000)
                u = r()
                who = None if u < 0.28 else band if u < 0.85 else composer(r)
                yield (
                    t,
                    track(r),
                    album_id,
                    media,
                    genre,
                    who,
                    ms,
                    int(ms * (rate + u * 2.0)),
                    price,
                )

    def playlist(self) -> Iterator[Row]:
        r = self.rng("Playlist").random
        for i in range(1, self.n["Playlist"] + 1):
            if i <= len(_PLAYLISTS):
                yield (i, _PLAYLISTS[i - 1])
            else:
                yield (i, _Words.playlist(r, _Words.pick(r, _GENRES)))

    def playlist_track(self) -> Iterator[Row]:
        """Each playlist takes one random track from each of ``size`` equal slices of the
        tracks: unique, sorted (fast for the primary key index) and spread over the catalogue."""
        r = self.rng("PlaylistTrack").random
        tracks = self.n["Track"]
        parts = self.playlist_tracks
        for p in range(parts.parts):
            k = min(parts.size(p), tracks)
            pid = p + 1
            for i in range(k):
                lo = i * tracks // k
                yield (pid, lo + 1 + int(r() * ((i + 1) * tracks // k - lo)))

    def employee(self) -> Iterator[Row]:
        r = self.rng("Employee").random
        pick = _Words.pick
        first_day, last_day = date(1947, 1, 1).toordinal(), date(1990, 12, 31).toordinal()
        hire_first, hire_last = date(2002, 1, 1).toordinal(), date(2024, 12, 31).toordinal()
        for i in range(1, self.n["Employee"] + 1):
            block, pos = divmod(i - 1, 8)
            if pos == 0:
                boss = None if block == 0 else 1
                title = "General Manager" if block == 0 else "Regional Manager"
            else:
                boss = block * 8 + _EMPLOYEE_BOSS[pos] + 1
                title = _EMPLOYEE_TITLES[pos]
            k = int(r() * len(_FIRST))
            first, last = _FIRST[k], pick(r, _LAST)
            city, postal = pick(r, _EMPLOYEE_CITIES)
            phone = _fill("+1 (403) ###-####", int(r() * 1e9))
            yield (
                i,
                last[:20],
                first[:20],
                title,
                boss,
                _day_text(first_day + int(r() * (last_day - first_day))),
                _day_text(hire_first + int(r() * (hire_last - hire_first))),
                f"{1 + int(r() * 9999)} {pick(r, _EMPLOYEE_STREETS)}",
                city,
                "AB",
                "Canada",
                _fill(f"{postal} #A#", int(r() * 1e9)),
                phone,
                _fill("+1 (403) ###-####", int(r() * 1e9)),
                f"{_FIRST_ASCII[k]}{i if i > 8 else ''}@chinookcorp.com",
            )

    def customer(self) -> Iterator[Row]:
        r = self.rng("Customer").random
        pick = _Words.pick
        employees = self.n["Employee"]
        rep_blocks = (employees - 3) // 8 + 1 if employees >= 3 else 0
        for i in range(1, self.n["Customer"] + 1):
            fi, li = int(r() * len(_FIRST)), int(r() * len(_LAST))
            first, last = _FIRST[fi], _LAST[li]
            address, city, state, country, postal = self.customer_address(i)
            phone = self.customer_phone(i)
            if rep_blocks:
                rep = 8 * int(r() * rep_blocks) + 3 + int(r() * 3)
                rep = rep if rep <= employees else rep - (rep - 1) % 8 + 2
            else:
                rep = 1 + int(r() * employees)
            u = r()
            company = pick(r, _COMPANIES) if u < 0.17 else None
            fax = phone[:-1] + str(int(u * 100) % 10) if u < 0.2 else None
            domain = pick(r, _EMAIL_DOMAINS)
            v = r()
            local = (
                f"{_FIRST_ASCII[fi]}.{_LAST_ASCII[li]}"
                if v < 0.5
                else f"{_FIRST_ASCII[fi][0]}{_LAST_ASCII[li]}"
                if v < 0.8
                else f"{_FIRST_ASCII[fi]}{_LAST_ASCII[li]}{int(v * 1000) % 100}"
            )
            yield (
                i,
                first,
                last[:20],
                company,
                address,
                city,
                state,
                country,
                postal,
                phone if v < 0.98 else None,
                fax,
                f"{local[:40]}@{domain}",
                rep,
            )

    def invoices(self, chunk: int = 2000) -> Iterator[tuple[list[Row], list[Row]]]:
        """Invoices with their lines, a chunk at a time: each Total is the sum of its lines."""
        r = self.rng("Invoice").random
        customers, tracks = self.n["Customer"], self.n["Track"]
        parts = self.invoice_lines
        first_day = date(2021, 1, 1).toordinal()
        days = date(2025, 12, 31).toordinal() - first_day + 1
        invoices_n = parts.parts
        price = self.track_price
        line_id = 0
        heads: list[Row] = []
        lines: list[Row] = []
        for i in range(invoices_n):
            invoice_id = i + 1
            customer = 1 + int(r() * customers)
            size = parts.size(i)
            start = int(r() * tracks)
            stride = 1 + int(r() * max(1, min(tracks // max(size, 1), 40)))
            total = 0.0
            for k in range(size):
                track_id = (start + k * stride) % tracks + 1
                unit = price(track_id)
                total += unit
                line_id += 1
                lines.append((line_id, invoice_id, track_id, unit, 1))
            address, city, state, country, postal = self.customer_address(customer)
            heads.append(
                (
                    invoice_id,
                    customer,
                    _day_text(first_day + i * days // invoices_n),
                    address,
                    city,
                    state,
                    country,
                    postal,
                    round(total, 2),
                )
            )
            if len(heads) >= chunk:
                yield heads, lines
                heads, lines = [], []
        if heads:
            yield heads, lines


def _timestamps(seed: int) -> list[str]:
    """A pool of past UTC timestamps for the ``updated_at`` column."""
    r = _rng(seed, UPDATED_AT).random
    start = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
    span = 540 * 86400
    return sorted(
        datetime.fromtimestamp(start + int(r() * span), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        for _ in range(4096)
    )


def write_sample(
    path: str | Path,
    scale: float = 1.0,
    seed: int = 0,
    *,
    updated_at: bool = False,
    overwrite: bool = False,
) -> dict[str, int]:
    """Write a Chinook-shaped SQLite database of ``scale`` times Chinook's rows to ``path``.

    The schema is Chinook's exactly; with ``updated_at=True`` every table also gets an
    ``updated_at DATETIME NOT NULL`` column (UTC text) and an index on it. The same ``seed``
    and ``scale`` give the same file contents. The database is built in a temporary file
    beside ``path`` and renamed into place at the end, so a failed run leaves nothing behind.
    Returns rows per table.

    Raises FileExistsError if ``path`` exists and ``overwrite`` is false, ValueError for a
    scale that is not a finite number above 0.

    >>> write_sample("chinook-x10.db", scale=10, seed=1)  # doctest: +SKIP
    {'Album': 3470, 'Artist': 2750, ...}
    """
    targets = _targets(scale)
    out = Path(path)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass overwrite=True to replace it")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent} is not a directory")
    # SQLite creates the file with the usual permissions; the random part keeps runs apart.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        written = _build(tmp, targets, seed, updated_at)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, out)
        else:
            _rename_no_clobber(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


def _rename_no_clobber(tmp: Path, out: Path) -> None:
    try:
        os.link(tmp, out)  # fails if out appeared meanwhile: never clobber
    except FileExistsError:
        raise FileExistsError(f"{out} already exists; pass overwrite=True to replace it") from None
    except OSError:  # a file system without hard links
        if out.exists():
            raise FileExistsError(
                f"{out} already exists; pass overwrite=True to replace it"
            ) from None
        os.replace(tmp, out)
        return
    tmp.unlink()


def _build(tmp: Path, counts: Mapping[str, int], seed: int, updated_at: bool) -> dict[str, int]:
    gen = _Generator(counts, seed)
    sources: dict[str, Callable[[], Iterator[Row]]] = {
        "Artist": gen.artist,
        "Album": gen.album,
        "Genre": gen.genre,
        "MediaType": gen.media_type,
        "Track": gen.track,
        "Playlist": gen.playlist,
        "PlaylistTrack": gen.playlist_track,
        "Employee": gen.employee,
        "Customer": gen.customer,
    }
    specs = {s.name: s for s in _SCHEMA}
    stamps = _timestamps(seed) if updated_at else []
    stamp_r = _rng(seed, "updated_at-pick").random

    def stamped(rows: Iterable[Row]) -> Iterator[Row]:
        n = len(stamps)
        for row in rows:
            yield (*row, stamps[int(stamp_r() * n)])

    def insert_sql(table: str) -> str:
        names = [c.name for c in specs[table].columns] + ([UPDATED_AT] if updated_at else [])
        cols = ", ".join(f"[{n}]" for n in names)
        return f"INSERT INTO [{table}] ({cols}) VALUES ({', '.join('?' * len(names))})"

    written: dict[str, int] = {}
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("BEGIN")
        for spec in _SCHEMA:
            conn.execute(_create_table_sql(spec, updated_at))
        for table in _LOAD_ORDER:
            if table in ("Invoice", "InvoiceLine"):
                continue
            rows = sources[table]()
            cur = conn.executemany(insert_sql(table), stamped(rows) if updated_at else rows)
            written[table] = cur.rowcount
        head_sql, line_sql = insert_sql("Invoice"), insert_sql("InvoiceLine")
        written["Invoice"] = written["InvoiceLine"] = 0
        for heads, lines in gen.invoices():
            conn.executemany(head_sql, stamped(heads) if updated_at else heads)
            conn.executemany(line_sql, stamped(lines) if updated_at else lines)
            written["Invoice"] += len(heads)
            written["InvoiceLine"] += len(lines)
        indexes = list(_INDEXES)
        if updated_at:  # what an application that syncs by this column would have
            indexes += [(f"IX_{t}_{UPDATED_AT}", t, UPDATED_AT) for t in CHINOOK_ROWS]
        for name, table, column in indexes:
            conn.execute(f"CREATE INDEX [{name}] ON [{table}] ([{column}])")
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {t: written[t] for t in CHINOOK_ROWS}


# --------------------------------------------------------------------------------------------
# The change applier.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeCounts:
    """Rows ``apply_changes`` inserted, updated and deleted, per table (every table listed)."""

    inserted: Mapping[str, int]
    updated: Mapping[str, int]
    deleted: Mapping[str, int]

    @property
    def total_inserted(self) -> int:
        return sum(self.inserted.values())

    @property
    def total_updated(self) -> int:
        return sum(self.updated.values())

    @property
    def total_deleted(self) -> int:
        return sum(self.deleted.values())

    @property
    def total(self) -> int:
        return self.total_inserted + self.total_updated + self.total_deleted

    def __str__(self) -> str:
        return (
            f"{self.total} rows changed: {self.total_inserted} inserted, "
            f"{self.total_updated} updated, {self.total_deleted} deleted"
        )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=1024)
def _select_sql(table: str, columns: tuple[str, ...], where: tuple[str, ...] = ("rowid",)) -> str:
    what = ", ".join(map(_q, columns)) or "1"
    return f"SELECT {what} FROM {_q(table)} WHERE " + " AND ".join(f"{c} = ?" for c in where)


@dataclass(frozen=True)
class _FK:
    child: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    nullable: bool  # every child column may hold NULL


@dataclass
class _Table:
    name: str
    columns: list[str]
    pk: list[str]
    rowid_alias: str | None
    max_len: dict[str, int]
    fks: list[_FK]
    unique: set[str]
    count: int
    lo: int
    hi: int  # the largest rowid before any change: updates and deletes stay at or below it
    top: int  # the largest rowid now: inserts go above it
    children: list[_FK] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)

    @property
    def stamp(self) -> str | None:
        return next((c for c in self.columns if c.lower() == UPDATED_AT), None)

    def units(self) -> list[tuple[str, ...]]:
        """What an update may change: a foreign key's columns together, or one other column."""
        fixed = set(self.pk) | self.unique | {c for c in self.columns if c.lower() == UPDATED_AT}
        in_fk = {c for fk in self.fks for c in fk.columns}
        units = [fk.columns for fk in self.fks if not fixed & set(fk.columns)]
        units += [(c,) for c in self.columns if c not in fixed and c not in in_fk]
        return units


def _catalog(conn: sqlite3.Connection) -> dict[str, _Table]:
    """Tables with rowids and what the applier needs to know of them, from PRAGMAs."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
            " AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
        )
    ]
    tables: dict[str, _Table] = {}
    for name in names:
        try:
            lo, hi, count = conn.execute(
                f"SELECT min(rowid), max(rowid), count(*) FROM {_q(name)}"
            ).fetchone()
        except sqlite3.OperationalError:  # WITHOUT ROWID: no cheap way to pick rows at random
            continue
        info = conn.execute(f"PRAGMA table_xinfo({_q(name)})").fetchall()
        columns = [r[1] for r in info if r[6] == 0]  # hidden and generated columns stay
        pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        types = {r[1]: (r[2] or "").upper() for r in info}
        alias = pk[0] if len(pk) == 1 and types[pk[0]] == "INTEGER" else None
        max_len = {
            c: int(m.group(1)) for c, t in types.items() if (m := re.search(r"CHAR\((\d+)", t))
        }
        notnull = {r[1] for r in info if r[3]}
        groups: dict[int, list[tuple[Any, ...]]] = {}
        for fk in conn.execute(f"PRAGMA foreign_key_list({_q(name)})"):
            groups.setdefault(fk[0], []).append(fk)
        fks = []
        for rows in groups.values():
            rows.sort(key=lambda r: r[1])
            parent = rows[0][2]
            parent_columns = tuple(r[4] for r in rows)
            if None in parent_columns:  # REFERENCES parent without columns: its primary key
                ppk = conn.execute(f"PRAGMA table_info({_q(parent)})").fetchall()
                parent_columns = tuple(r[1] for r in sorted(ppk, key=lambda r: r[5]) if r[5])
            cols = tuple(r[3] for r in rows)
            fks.append(_FK(name, cols, parent, parent_columns, not set(cols) & notnull))
        unique: set[str] = set()
        for idx in conn.execute(f"PRAGMA index_list({_q(name)})"):
            if idx[2]:
                unique |= {r[2] for r in conn.execute(f"PRAGMA index_info({_q(idx[1])})")}
        tables[name] = _Table(
            name,
            columns,
            pk,
            alias,
            max_len,
            fks,
            unique - set(pk),
            count,
            lo or 0,
            hi or 0,
            hi or 0,
        )
    for table in tables.values():
        for fk in table.fks:
            if fk.parent in tables:
                tables[fk.parent].children.append(fk)
    return tables


def _parents_first(tables: Mapping[str, _Table]) -> list[str]:
    order: list[str] = []
    done: set[str] = set()
    pending = sorted(tables)
    while pending:
        ready = [
            t
            for t in pending
            if all(
                fk.parent in done or fk.parent == t or fk.parent not in tables
                for fk in tables[t].fks
            )
        ] or pending[:1]  # a cycle: break it anywhere
        for t in ready:
            order.append(t)
            done.add(t)
        pending = [t for t in pending if t not in done]
    return order


def _quotas(
    tables: Mapping[str, _Table], fraction: float, shares: tuple[float, float, float]
) -> dict[tuple[str, int], int]:
    """Changes per (table, kind), kind 0 insert, 1 update, 2 delete: ``fraction`` of each
    table's rows split by ``shares``. Updates of tables with nothing to update (all key, like
    PlaylistTrack) go to the other tables, so each kind gets its share of all rows. Rounded so
    the grand total is ``fraction`` of all rows."""
    rows = sum(t.count for t in tables.values())
    updatable = sum(t.count for t in tables.values() if t.units())
    ins, upd, dele = (fraction * s / sum(shares) for s in shares)
    wanted: dict[tuple[str, int], float] = {}
    for name, t in tables.items():
        wanted[name, 0] = ins * t.count
        wanted[name, 1] = upd * rows * t.count / updatable if t.units() else 0.0
        wanted[name, 2] = dele * t.count
    quota = {k: math.floor(v) for k, v in wanted.items()}
    left = round(sum(wanted.values())) - sum(quota.values())
    for k in sorted(wanted, key=lambda k: quota[k] - wanted[k])[: max(left, 0)]:
        quota[k] += 1
    return quota


_TEXT_MAKERS: dict[tuple[str, str], Callable[[Callable[[], float]], Any]] = {
    ("artist", "name"): _Words.artist,
    ("album", "title"): _Words.album,
    ("track", "name"): _Words.track,
    ("track", "composer"): lambda r: None if r() < 0.28 else _Words.composer(r),
    ("playlist", "name"): lambda r: _Words.playlist(r, _Words.pick(r, _GENRES)),
    ("customer", "firstname"): lambda r: _Words.pick(r, _FIRST),
    ("customer", "lastname"): lambda r: _Words.pick(r, _LAST),
    ("employee", "firstname"): lambda r: _Words.pick(r, _FIRST),
    ("employee", "lastname"): lambda r: _Words.pick(r, _LAST),
    ("customer", "company"): lambda r: _Words.pick(r, _COMPANIES) if r() < 0.17 else None,
    ("customer", "email"): lambda r: _Words.email(r, _Words.pick(r, _FIRST), _Words.pick(r, _LAST)),
    ("customer", "phone"): _Words.phone,
    ("customer", "fax"): lambda r: _Words.phone(r) if r() < 0.2 else None,
    ("employee", "phone"): _Words.phone,
    ("track", "milliseconds"): lambda r: 60_000 + int(r() * 240_000 + r() * 240_000),
    ("track", "bytes"): lambda r: int((60_000 + r() * 480_000) * 32.5),
    ("track", "unitprice"): lambda r: 1.99 if r() < 0.1 else 0.99,
    ("invoiceline", "unitprice"): lambda r: 1.99 if r() < 0.1 else 0.99,
}


class _Applier:
    def __init__(self, conn: sqlite3.Connection, tables: dict[str, _Table], seed: int) -> None:
        self.conn = conn
        self.tables = tables
        rng = _rng(seed, "changes")
        self.r = rng.random
        self.sample = rng.sample
        self.now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        self.inserted = dict.fromkeys(tables, 0)
        self.updated = dict.fromkeys(tables, 0)
        self.deleted = dict.fromkeys(tables, 0)
        self.deleting: set[tuple[str, int]] = set()

    # Picking rows.

    def rowid(self, t: _Table, hi: int) -> int:
        return t.lo + int(self.r() * (hi - t.lo + 1))

    def random_row(self, t: _Table, columns: Sequence[str], hi: int) -> tuple[int, Row] | None:
        """A random live row's (rowid, values) among rowids up to ``hi``, or None."""
        sql = _select_sql(t.name, tuple(columns))
        for _ in range(64):
            rowid = self.rowid(t, hi)
            if rowid in t.touched:
                continue
            row = self.conn.execute(sql, (rowid,)).fetchone()
            if row is not None:
                return rowid, tuple(row)
        return None

    def parent_key(self, fk: _FK) -> Row | None:
        parent = self.tables.get(fk.parent)
        if parent is None or parent.top < parent.lo or not parent.top:
            return None
        found = self.random_row(parent, fk.parent_columns, parent.top)
        return found[1] if found and None not in found[1] else None

    def fresh(self, t: _Table, column: str, donor: Any) -> Any:
        make = _TEXT_MAKERS.get((t.name.lower(), column.lower()))
        value = make(self.r) if make else donor
        if isinstance(value, str) and column in t.max_len:
            value = value[: t.max_len[column]]
        return value

    # Deleting.

    def key(self, t: _Table, fk: _FK, rowid: int) -> Row | None:
        """The values of an existing row that rows of ``fk`` refer to it by (None: no key)."""
        if fk.parent_columns == (t.rowid_alias,):
            return (rowid,)
        key = self.conn.execute(_select_sql(t.name, fk.parent_columns), (rowid,)).fetchone()
        return None if key is None or None in key else tuple(key)

    def references(self, t: _Table, rowid: int) -> int:
        """Rows (up to 1000 per foreign key) that refer to a row."""
        n = 0
        for fk in t.children:
            key = self.key(t, fk, rowid)
            if key is not None:
                sql = _select_sql(fk.child, (), tuple(map(_q, fk.columns)))
                n += self.conn.execute(f"SELECT count(*) FROM ({sql} LIMIT 1000)", key).fetchone()[
                    0
                ]
        return n

    def delete(self, t: _Table, rowid: int) -> None:
        """Delete a row, first clearing nullable references to it and deleting rows that
        must refer to it (counted as updates and deletes of their tables)."""
        self.deleting.add((t.name, rowid))
        for fk in t.children:
            key = self.key(t, fk, rowid)
            if key is None:
                continue
            child = self.tables[fk.child]
            sql = _select_sql(child.name, ("rowid",), tuple(map(_q, fk.columns)))
            refs = [
                r[0] for r in self.conn.execute(sql, key) if (child.name, r[0]) not in self.deleting
            ]
            for ref in refs:
                if fk.nullable:
                    sets = [f"{_q(c)} = NULL" for c in fk.columns]
                    params: list[Any] = []
                    if child.stamp:
                        sets.append(f"{_q(child.stamp)} = ?")
                        params.append(self.now)
                    self.conn.execute(
                        f"UPDATE {_q(child.name)} SET {', '.join(sets)} WHERE rowid = ?",
                        (*params, ref),
                    )
                    if ref not in child.touched and ref <= child.hi:
                        child.touched.add(ref)
                        self.updated[child.name] += 1
                else:
                    self.delete(child, ref)
        cur = self.conn.execute(f"DELETE FROM {_q(t.name)} WHERE rowid = ?", (rowid,))
        if cur.rowcount:
            t.touched.add(rowid)
            self.deleted[t.name] += 1

    def delete_some(self, t: _Table, quota: int) -> None:
        """Delete about ``quota`` random rows, preferring rows nothing refers to."""
        for _ in range(quota * 10 + 10):
            if self.deleted[t.name] >= quota or not t.hi:
                return
            best: tuple[int, int] | None = None
            for _ in range(4):
                found = self.random_row(t, (), t.hi)
                if found is None:
                    continue
                refs = self.references(t, found[0])
                if best is None or refs < best[0]:
                    best = (refs, found[0])
                if refs == 0:
                    break
            if best is not None:
                self.delete(t, best[1])

    # Updating.

    def update_some(self, t: _Table, quota: int) -> None:
        units = t.units()
        if not units or not t.hi:
            return
        changeable = [c for u in units for c in u]
        stamp = t.stamp
        sets = [*changeable, *([stamp] if stamp else [])]
        sql = f"UPDATE {_q(t.name)} SET {', '.join(f'{_q(c)} = ?' for c in sets)} WHERE rowid = ?"
        for _ in range(quota * 10 + 10):
            if self.updated[t.name] >= quota:
                return
            found = self.random_row(t, changeable, t.hi)
            donor = self.random_row(t, changeable, t.hi)
            if found is None or donor is None:
                continue
            rowid, old = found
            values = dict(zip(changeable, old, strict=True))
            donated = dict(zip(changeable, donor[1], strict=True))
            for unit in self.sample(units, 1 + int(self.r() * min(3, len(units)))):
                self.change(t, unit, values, donated)
            params = [values[c] for c in changeable] + ([self.now] if stamp else [])
            self.conn.execute(sql, (*params, rowid))
            t.touched.add(rowid)
            self.updated[t.name] += 1

    def change(
        self, t: _Table, unit: tuple[str, ...], values: dict[str, Any], donor: Mapping[str, Any]
    ) -> None:
        fk = next((fk for fk in t.fks if fk.columns == unit), None)
        if fk is not None:
            key = self.parent_key(fk)
            if key is not None:
                values.update(zip(unit, key, strict=True))
        else:
            values[unit[0]] = self.fresh(t, unit[0], donor[unit[0]])

    # Inserting.

    def insert_some(self, t: _Table, quota: int) -> None:
        if not t.hi or not t.columns:
            return
        columns = list(t.columns)
        sql = (
            f"INSERT INTO {_q(t.name)} ({', '.join(map(_q, columns))}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        fk_columns = {c for fk in t.fks for c in fk.columns}
        for _ in range(quota * 10 + 10):
            if self.inserted[t.name] >= quota:
                return
            donor = self.random_row(t, columns, t.top)
            if donor is None:
                continue
            values = dict(zip(columns, donor[1], strict=True))
            for fk in t.fks:
                if fk.nullable and all(values[c] is None for c in fk.columns):
                    continue  # keep the donor's "no reference"
                key = self.parent_key(fk)
                if key is None and not fk.nullable:
                    break
                values.update(zip(fk.columns, key or (None,) * len(fk.columns), strict=True))
            else:
                for c in columns:
                    if c.lower() == UPDATED_AT:
                        values[c] = self.now
                    elif c not in fk_columns and c not in t.pk:
                        values[c] = self.fresh(t, c, values[c])
                if t.rowid_alias:
                    values[t.rowid_alias] = t.top + 1
                for c in t.pk:
                    if c != t.rowid_alias and c not in fk_columns:
                        values[c] = f"{values[c]}-{secrets.token_hex(3)}"
                try:
                    cur = self.conn.execute(sql, [values[c] for c in columns])
                except sqlite3.IntegrityError:  # that key is taken: try another row
                    continue
                t.top = max(t.top, cur.lastrowid or 0)
                self.inserted[t.name] += 1


def apply_changes(
    path: str | Path,
    fraction: float,
    seed: int = 0,
    *,
    inserts: float = 1 / 3,
    updates: float = 1 / 3,
    deletes: float = 1 / 3,
) -> ChangeCounts:
    """Change about ``fraction`` of the rows of the SQLite database at ``path`` the way an
    application would, in one transaction with foreign keys enforced.

    Each table gets ``fraction`` of its rows in changes, split by the ``inserts``, ``updates``
    and ``deletes`` shares: new rows above the largest id with valid references, new plausible
    values in non-key columns of random rows, and deletions of random rows (rows nothing refers
    to are preferred; otherwise the rows referring to it are deleted first, or their reference
    set to NULL where allowed, and counted). A column named ``updated_at`` is set to the current
    UTC time on every row inserted or updated. Works on any database whose tables have rowids;
    WITHOUT ROWID tables are left alone. The same seed on the same file makes the same changes
    (``updated_at`` aside).

    >>> apply_changes("chinook-x10.db", 0.01, seed=7).total  # doctest: +SKIP
    1561
    """
    if not (math.isfinite(fraction) and 0 <= fraction <= 1):
        raise ValueError(f"fraction must be between 0 and 1, not {fraction!r}")
    shares = (inserts, updates, deletes)
    if not all(math.isfinite(s) and s >= 0 for s in shares) or sum(shares) <= 0:
        raise ValueError("inserts, updates and deletes must be shares >= 0 with a positive sum")
    db = Path(path)
    if not db.is_file():
        raise FileNotFoundError(f"{db} is not a file")
    conn = sqlite3.connect(db, isolation_level=None, cached_statements=512)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        # Random rows all over a big file: a larger page cache (this connection only) saves
        # most of the re-reads and the journal syncs of spilling pages mid-transaction.
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = _catalog(conn)
            quota = _quotas(tables, fraction, shares)
            applier = _Applier(conn, tables, seed)
            order = _parents_first(tables)
            for name in order:
                applier.delete_some(tables[name], quota[name, 2])
            for name in order:
                applier.update_some(tables[name], quota[name, 1])
            for name in order:
                applier.insert_some(tables[name], quota[name, 0])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return ChangeCounts(applier.inserted, applier.updated, applier.deleted)
