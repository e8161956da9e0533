"""Reads a Cardskipper export (XML) on stdin and prints a JSON summary:
{"omids": [...], "members": {omid: {...}}}. Exits 2 if the XML is not
well-formed. Used by the shell tests."""
import json
import sys
import xml.etree.ElementTree as ET

data = sys.stdin.buffer.read()
try:
    root = ET.fromstring(data)
except ET.ParseError as e:
    print(json.dumps({"error": str(e)}))
    sys.exit(2)
out = {"root": root.tag, "has_members": root.find("Members") is not None, "omids": [],
       "members": {}}
for m in root.iter("Member"):
    omid = m.get("OrganisationMemberId")
    out["omids"].append(int(omid))
    ci = m.find("ContactInfo")
    out["members"][omid] = {
        "first": m.get("Firstname"), "last": m.get("Lastname"), "inactive": m.get("Inactive"),
        "birthdate": m.get("Birthdate"), "contact": ci is not None,
        "email": ci.get("EMail") if ci is not None else None,
        "phone": ci.get("CellPhone1") if ci is not None else None,
        "orgs": [o.get("Id") for o in m.iter("Organisation")],
        "roles": [[r.get("Id"), r.get("StartDate"), r.get("EndDate"), r.get("Type")]
                  for r in m.iter("Role")],
    }
print(json.dumps(out, ensure_ascii=False))
