"""How an issued document reaches its debtor, one module per billing channel (an issuer setting).

- `folder`: the document is filed in the issuer's deposit folder for its channel (`facturx_chorus`,
  `pes_asap`, `email_pdf`), for a person or another system to take from there.
- `chorus`: an issuer of channel `facturx_chorus` with a Chorus Pro technical account deposits through the
  API and follows each document there (instead of the folder).
"""
