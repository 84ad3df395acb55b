# Dates typed into forms and query parameters are read in one format only, ISO 8601
# (YYYY-MM-DD): what the browsers' date inputs send and what the API documents. Django's
# locale formats also accept 01/02/2013, which reads as 1 February in Spanish and 2 January
# in English — an ambiguous date accepted without a word. Every other format comes from
# Django's own locale files.
DATE_INPUT_FORMATS = ["%Y-%m-%d"]
