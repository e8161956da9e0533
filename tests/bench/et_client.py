#!/usr/bin/env python3
"""The reference the bench weighs cardsync's memory against: a sync client as
the seed design has it, parsing the whole Cardskipper export at once with
xml.etree.ElementTree.parse and keeping each member's latest end date by
e-mail (what it would then compare with the doors).

usage: et_client.py URL USER PASSWORD ORG
"""
import base64
import sys
import urllib.request
import xml.etree.ElementTree as ET


def main():
    url, user, password, org = sys.argv[1:5]
    body = ('<?xml version="1.0" encoding="utf-8"?><Cardskipper><SearchCriteriaMember>'
            f'<OrganisationId value="{org}"/></SearchCriteriaMember></Cardskipper>').encode()
    req = urllib.request.Request(url + "/Member/Export", data=body, method="POST")
    req.add_header("Content-Type", "application/xml; charset=utf-8")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    with urllib.request.urlopen(req, timeout=120) as answer:
        tree = ET.parse(answer)
    latest = {}
    for m in tree.getroot().iter("Member"):
        contact = m.find("ContactInfo")
        email = (contact.get("EMail") if contact is not None else "") or ""
        email = email.strip().lower()
        if not email:
            continue
        for org_el in m.iter("Organisation"):
            if org_el.get("Id") != org:
                continue
            for role in org_el.iter("Role"):
                end = (role.get("EndDate") or "")[:10]
                if end > latest.get(email, ""):
                    latest[email] = end
    print(len(latest))


if __name__ == "__main__":
    main()
