"""The signature book (parapheur): visa circuits of approvers and signatories over a document."""
