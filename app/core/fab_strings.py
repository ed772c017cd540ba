"""Flask-AppBuilder's user-visible messages, marked here so that our catalog translates them.

Flask-AppBuilder 5.3.0 ships a French catalog that leaves many of these
msgids in English ("Edit", "Delete", "Actions") and words others badly
("Nombre de record", "S'enregistrer" for "Sign In").  Flask-Babel 4 loads the
catalogs of BABEL_TRANSLATION_DIRECTORIES in order and lets each later one
override the msgids it shares with the earlier ones (``Domain.get_translations``
merges them with ``Translations.merge``).  Flask-AppBuilder puts its own
directory first, so a msgid that is translated in ``translations/fr`` wins
over Flask-AppBuilder's text.

``pybabel extract`` reads only our code, so this module repeats each
Flask-AppBuilder msgid that a user can meet with our settings: database
login, security views on, self-registration off.  The application never
imports it.  Each string must be Flask-AppBuilder's msgid character for
character, or it translates nothing: tests/unit/test_translations.py checks
them against the installed package.

WTForms' own validator messages ("This field is required.", "Not a valid
choice.") are not listed: Flask-WTF translates them with the "wtforms" domain
shipped inside WTForms, so our catalog is never asked for them.
"""

from flask_babel import lazy_gettext as _l

FAB_STRINGS = (
    # Login page and user menu in the navigation bar.
    _l("Sign In"),
    _l("Enter your login and password below"),
    _l("Username"),
    _l("User Name"),
    _l("Password"),
    _l("Invalid login. Please try again."),
    _l("Login"),
    _l("Logout"),
    _l("Profile"),
    _l("Access is Denied"),
    # The user's own profile page, its edit form and the password reset.
    _l("Your user information"),
    _l("User info"),
    _l("Personal Info"),
    _l("Audit Info"),
    _l("Edit User"),
    _l("Edit User Information"),
    _l("User information changed"),
    _l("Reset my password"),
    _l("Reset Password"),
    _l("Reset Password Form"),
    _l("Password Changed"),
    _l("Confirm Password"),
    _l("Please rewrite the password to confirm"),
    _l("Please rewrite the user's password to confirm"),
    _l("Passwords must match"),
    _l("Please use a good password policy, this application does not check this for you"),
    _l("The user's password for authentication"),
    # Columns, help texts and sections of the user views.
    _l("Full Name"),
    _l("First Name"),
    _l("Last Name"),
    _l("Write the user first name or names"),
    _l("Write the user last name"),
    _l("Email"),
    _l("The user's email, this will also be used for OID auth"),
    _l("Username valid for authentication on DB or LDAP, unused for OID auth"),
    _l("Is Active?"),
    _l("It's not a good policy to remove a user, just make it inactive"),
    _l("Role"),
    _l("The user role on the application, this will associate with a list of permissions"),
    _l("Groups"),
    _l("The user group on the application, this will associate with a list of roles associated with the group"),
    _l("Last login"),
    _l("Login count"),
    _l("Failed login count"),
    _l("Created on"),
    _l("Created by"),
    _l("Changed on"),
    _l("Changed by"),
    # Security menu and the titles of its views.
    _l("Security"),
    _l("List Users"),
    _l("Show User"),
    _l("Add User"),
    _l("List Roles"),
    _l("Show Role"),
    _l("Add Role"),
    _l("Edit Role"),
    _l("Name"),
    _l("Permissions"),
    _l("Copy Role"),
    _l("Copy the selected roles?"),
    _l("User(s) exists in the role, cannot delete"),
    _l("List Groups"),
    _l("Show Group"),
    _l("Add Group"),
    _l("Edit Group"),
    _l("User(s) exists in the group, cannot delete"),
    _l("Either select a role or a group"),
    _l("User's Statistics"),
    _l("User Statistics"),
    _l("Group by"),
    _l("Base Permissions"),
    _l("List Base Permissions"),
    _l("Show Base Permission"),
    _l("Add Base Permission"),
    _l("Edit Base Permission"),
    _l("Views/Menus"),
    _l("List View Menus"),
    _l("Show View Menu"),
    _l("Add View Menu"),
    _l("Edit View Menu"),
    _l("Permission on Views/Menus"),
    _l("List Permissions on Views/Menus"),
    _l("Show Permission on Views/Menus"),
    _l("Add Permission on Views/Menus"),
    _l("Edit Permission on Views/Menus"),
    _l("Permission"),
    _l("View/Menu"),
    # List, search, show and edit pages of every model view.
    _l("Record Count"),
    _l("No records found"),
    _l("Search"),
    _l("Add Filter"),
    _l("Actions"),
    _l("Page size"),
    _l("Order by"),
    _l("Add"),
    _l("Add a new record"),
    _l("Edit"),
    _l("Edit record"),
    _l("Show"),
    _l("Show record"),
    _l("Delete"),
    _l("Delete record"),
    _l("Are you sure you want to delete this item?"),
    _l("User confirmation needed"),
    _l("Detail"),
    _l("Back"),
    _l("Save"),
    _l("Select Value"),
    # Flash messages after saving or deleting a record.
    _l("Added Row"),
    _l("Changed Row"),
    _l("Deleted Row"),
    _l("Associated data exists, please delete them first"),
    _l("Integrity error, probably unique constraint"),
    _l("Database Error"),
    # Names of the search filters (SQLAlchemy interface).
    _l("Starts with"),
    _l("Not Starts with"),
    _l("Ends with"),
    _l("Not Ends with"),
    _l("Contains"),
    _l("Not Contains"),
    _l("Equal to"),
    _l("Not Equal to"),
    _l("Greater than"),
    _l("Smaller than"),
    _l("In"),
    _l("Not In"),
    _l("Relation"),
    _l("No Relation"),
    _l("Relation as Many"),
)
