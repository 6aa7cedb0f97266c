"""Nested fields (domains, sites, actors, contacts, events, links) as the real exports have them."""

from __future__ import annotations

import json

import pytest

from dyag_core.catalog import Actor, Contact, Domain, Event, Hosting, Link, Site, load_catalog, load_catalog_file


@pytest.fixture(scope="module")
def sample(sample_catalog_path):
    return load_catalog_file(sample_catalog_path).by_id()


def one_entity(**fields):
    """The entity read from a one-record JSON catalog with these extra fields."""
    record = {"id": 1, "nom": "GEOVAL", **fields}
    return load_catalog(json.dumps([record], ensure_ascii=False).encode()).entities[0]


# --- domaines et sous domaines --------------------------------------------------------------


def test_domains_read_domain_and_subdomain(sample):
    assert sample["1004"].domains == (Domain("Transports", "Transports routiers", obsolete=False),)


def test_obsolete_prefix_is_stripped_and_flags_the_domain(sample):
    assert sample["1212"].domains == (
        Domain("Biodiversité", "Connaissance de la biodiversité", obsolete=False),
        Domain("Information géographique", "Cartographie", obsolete=True),
    )


@pytest.mark.parametrize("prefixed", ["OBSOLÈTE - Eau", "OBSOLETE - Eau", "Obsolète – Eau", "obsolète: Eau"])
def test_obsolete_prefix_is_recognised_in_its_spellings(prefixed):
    entity = one_entity(
        **{"domaines et sous domaines": [{"domaine metier": prefixed, "sous domaine metier": "Qualité"}]}
    )

    assert entity.domains == (Domain("Eau", "Qualité", obsolete=True),)


def test_obsolete_prefix_on_the_subdomain_flags_the_domain():
    entity = one_entity(
        **{"domaines et sous domaines": [{"domaine metier": "Eau", "sous domaine metier": "OBSOLÈTE - Qualité"}]}
    )

    assert entity.domains == (Domain("Eau", "Qualité", obsolete=True),)


def test_domain_without_a_domain_name_is_dropped():
    entity = one_entity(**{"domaines et sous domaines": [{"domaine metier": "", "sous domaine metier": "Qualité"}]})

    assert entity.domains == ()


# --- sites --------------------------------------------------------------------------------------


def test_sites_read_url_and_kind(sample):
    assert sample["1004"].sites == (
        Site("https://6tzen.example.gouv.fr/", "Site principal"),
        Site("https://6tzen.example.gouv.fr/aide/", "Documentation"),
    )


def test_spaced_out_urls_of_some_exports_are_repaired(sample):
    assert sample["1503"].sites == (
        Site("https://www.geoval.example.gouv.fr", "Site principal"),
        Site("https://catalogue.geoval.example.gouv.fr", "Catalogue"),
    )


def test_spaced_out_url_keeps_hyphens_in_host_names(sample):
    assert [s.url for s in sample["1531"].sites] == ["https://urba-consult.example.gouv.fr"]


# --- acteurs --------------------------------------------------------------------------------------


def test_a_repeated_actor_is_kept_once(sample):
    assert sample["1038"].actors == (Actor("DGITM/DST/PTF", "MOA"), Actor("SNUM/MSP/DAM", "MOE"))
    assert sample["1052"].actors == (Actor("DGITM/DST/PTF", "MOA"), Actor("DREAL Bretagne", "Utilisateur pilote"))


def test_same_actor_in_two_roles_is_kept_twice():
    entity = one_entity(
        acteurs=[{"role d acteur": "MOA", "acteur": "DGALN/DEB"}, {"role d acteur": "MOE", "acteur": "DGALN/DEB"}]
    )

    assert entity.actors == (Actor("DGALN/DEB", "MOA"), Actor("DGALN/DEB", "MOE"))


# --- contacts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contact", "courriel", "expected"),
    [
        pytest.param(
            "LEFEBVRE Aurélie (cheffe de projet) - DGITM/DST/PTF",
            "aurelie.lefebvre@developpement-durable.example",
            Contact(
                "LEFEBVRE Aurélie",
                "Chef de projet",
                "aurelie.lefebvre@developpement-durable.example",
                "cheffe de projet",
                "DGITM/DST/PTF",
            ),
            id="name-function-service",
        ),
        pytest.param(
            "CARON Nathalie (cheffe de projet) - DGALN/DEB - nathalie.caron@developpement-durable.example",
            "nathalie.caron@developpement-durable.example",
            Contact(
                "CARON Nathalie",
                "Chef de projet",
                "nathalie.caron@developpement-durable.example",
                "cheffe de projet",
                "DGALN/DEB",
            ),
            id="email-repeated-in-the-string",
        ),
        pytest.param(
            "DUPONT Jean (chef de projet) - DGALN/DEB - jean.dupont@developpement-durable.example",
            "",
            Contact(
                "DUPONT Jean",
                "Chef de projet",
                "jean.dupont@developpement-durable.example",
                "chef de projet",
                "DGALN/DEB",
            ),
            id="email-only-in-the-string",
        ),
        pytest.param(
            "Assistance HYDROSCOPE - SNUM/MSP",
            "assistance.hydroscope@ecologie.example",
            Contact(
                "Assistance HYDROSCOPE", "Chef de projet", "assistance.hydroscope@ecologie.example", None, "SNUM/MSP"
            ),
            id="team-without-function",
        ),
        pytest.param(
            "MARTIN Claire",
            None,
            Contact("MARTIN Claire", "Chef de projet", None, None, None),
            id="name-only",
        ),
    ],
)
def test_contact_strings_split_into_name_function_service_and_email(contact, courriel, expected):
    entity = one_entity(contacts=[{"role de contact": "Chef de projet", "contact": contact, "courriel": courriel}])

    assert entity.contacts == (expected,)


def test_contact_from_the_sample_with_the_repeated_email(sample):
    assert sample["1118"].contacts == (
        Contact(
            name="CARON Nathalie",
            role="Chef de projet",
            email="nathalie.caron@developpement-durable.example",
            function="cheffe de projet",
            service="DGALN/DEB",
        ),
    )


def test_contact_with_neither_name_nor_email_is_dropped():
    entity = one_entity(contacts=[{"role de contact": "Chef de projet", "contact": "", "courriel": ""}])

    assert entity.contacts == ()


# --- evenements -----------------------------------------------------------------------------------


def test_event_dates_in_french_format_become_iso(sample):
    assert sample["1004"].events == (
        Event("Mise en production", "2019-01-14", "1.0"),
        Event("Mise à jour majeure", "2021-09-02", "2.0"),
        Event("Mise à jour majeure", "2024-04-18", "3.2"),
    )


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("03/04/2019", "2019-04-03"),
        ("2019-04-03", "2019-04-03"),
        ("03-04-2019", "2019-04-03"),
        ("2019-04-03T10:20:30", "2019-04-03"),
    ],
)
def test_event_dates_in_each_known_format_become_iso(raw, iso):
    entity = one_entity(evenements=[{"date": raw, "type d evenement": "Mise en production"}])

    assert entity.events == (Event("Mise en production", iso, None),)


def test_event_date_that_cannot_be_read_is_kept_as_written():
    entity = one_entity(evenements=[{"date": "printemps 2019", "type d evenement": "Création"}])

    assert entity.events[0].date == "printemps 2019"


# --- applications liees, donnees liees, hebergements ------------------------------------------


def test_related_applications_keep_target_and_flow(sample):
    assert sample["1004"].related_applications == (Link("REGTRANS", "Bidirectionnel"), Link("CONTROLE-RT", "Sortant"))


def test_related_data_keep_target_and_flow(sample):
    assert sample["1004"].related_data == (
        Link("Registre des entreprises de transport routier", "Bidirectionnel"),
        Link("Répertoire des établissements (SIRET)", "Entrant"),
    )


def test_hostings_keep_datacenter_and_platform(sample):
    assert sample["1004"].hostings == (
        Hosting("Centre serveur ministériel - site Ouest", "Production"),
        Hosting("Centre serveur ministériel - site Ouest", "Recette"),
    )


# --- nested keys in other spellings, and nested fields given as text ---------------------------


def test_nested_keys_resolve_whatever_their_case_and_accents():
    entity = one_entity(**{"Domaines et sous-domaines": [{"Domaine métier": "Eau", "Sous-domaine métier": "Qualité"}]})

    assert entity.domains == (Domain("Eau", "Qualité"),)


def test_a_single_nested_object_reads_as_a_one_item_list():
    entity = one_entity(sites={"nature de l url": "Site principal", "url": "https://geoval.example.gouv.fr/"})

    assert entity.sites == (Site("https://geoval.example.gouv.fr/", "Site principal"),)


def test_nested_fields_given_as_text_in_csv_are_split_on_semicolons():
    data = (
        "id,nom,domaines,acteurs,sites,applications liees\n"
        "1,GEOVAL,Eau ; Biodiversité,DGALN/DEB;DGALN/DEB;SNUM,https://a.example/ ; https://b.example/,HYDRO\n"
    )

    entity = load_catalog(data.encode(), filename="catalog.csv").entities[0]

    assert entity.domains == (Domain("Eau"), Domain("Biodiversité"))
    assert entity.actors == (Actor("DGALN/DEB"), Actor("SNUM"))
    assert entity.sites == (Site("https://a.example/"), Site("https://b.example/"))
    assert entity.related_applications == (Link("HYDRO"),)


def test_nested_text_in_a_semicolon_csv_is_split_inside_its_quotes():
    data = 'id;nom;contacts\n1;GEOVAL;"MARTIN Claire (administratrice) - CGDD/SDES; DUPONT Jean - DGALN"\n'

    entity = load_catalog(data.encode(), filename="catalog.csv").entities[0]

    assert entity.contacts == (
        Contact("MARTIN Claire", function="administratrice", service="CGDD/SDES"),
        Contact("DUPONT Jean", service="DGALN"),
    )


def test_empty_nested_cells_in_csv_give_empty_tuples():
    data = "id,nom,domaines,acteurs\n1,GEOVAL,,\n"

    entity = load_catalog(data.encode(), filename="catalog.csv").entities[0]

    assert entity.domains == ()
    assert entity.actors == ()
