package directory

import (
	"strings"
	"unicode"
)

// field is what Warden reads from a column of a people file.
type field int

// The fields of a people file.
const (
	fUnknown field = iota // not recognised: ignored
	fIgnored              // recognised but deliberately not kept (DOB, address...)
	fUPN
	fAdmissionNo
	fMISID
	fLegalForename
	fPreferredForename
	fSurname
	fName // "Surname, Forename" or "Forename Surname"
	fYear
	fRegGroup
	fRole
	fUsername
	fEmail
	fRelationship
	fPupilUPN
	fPupilAdmissionNo
	fPupilMISID
	fKind
	numFields
)

// fieldNames are the names Column.Field reports.
var fieldNames = [numFields]string{
	fUnknown:           "",
	fIgnored:           FieldIgnored,
	fUPN:               "upn",
	fAdmissionNo:       "admission_no",
	fMISID:             "mis_id",
	fLegalForename:     "legal_forename",
	fPreferredForename: "preferred_forename",
	fSurname:           "surname",
	fName:              "name",
	fYear:              "year",
	fRegGroup:          "reg_group",
	fRole:              "role",
	fUsername:          "username",
	fEmail:             "email",
	fRelationship:      "relationship",
	fPupilUPN:          "pupil_upn",
	fPupilAdmissionNo:  "pupil_admission_no",
	fPupilMISID:        "pupil_mis_id",
	fKind:              "kind",
}

// fieldLabels describe fields in messages.
var fieldLabels = [numFields]string{
	fUPN:               "UPN",
	fAdmissionNo:       "admission number",
	fMISID:             "MIS id",
	fLegalForename:     "legal forename",
	fPreferredForename: "preferred forename",
	fSurname:           "surname",
	fName:              "full name",
	fYear:              "year group",
	fRegGroup:          "registration group",
	fRole:              "role",
	fUsername:          "username",
	fEmail:             "email",
	fRelationship:      "relationship",
	fPupilUPN:          "pupil's UPN",
	fPupilAdmissionNo:  "pupil's admission number",
	fPupilMISID:        "pupil's MIS id",
	fKind:              "person type",
}

// FieldIgnored is the Column.Field of a column Warden recognises and
// deliberately does not keep, such as DOB.
const FieldIgnored = "ignored"

// hint says whose value a column holds when its header names someone.
type hint int

const (
	hNone   hint = iota
	hPupil       // "Pupil ID", "Student Forename", "UPN"
	hStaff       // "Staff Code"
	hParent      // "Contact Forename", "Parent Email"
)

// synonym is what a normalised header means.
type synonym struct {
	f field
	h hint
}

// headerSynonyms maps normalised header names (lower-case letters and
// digits only; see normHeader) to fields. It is read-only.
var headerSynonyms = func() map[string]synonym {
	m := make(map[string]synonym)
	add := func(f field, h hint, names ...string) {
		for _, n := range names {
			m[n] = synonym{f, h}
		}
	}
	add(fUPN, hPupil, "upn", "uniquepupilnumber")
	add(fPupilUPN, hPupil, "pupilupn", "studentupn", "childupn", "learnerupn")
	add(fAdmissionNo, hPupil, "adno", "admno", "admissionno", "admissionnumber", "admissionnum", "admissionsnumber")
	add(fPupilAdmissionNo, hPupil, "pupiladno", "studentadno", "childadno", "pupiladmissionno", "pupiladmissionnumber",
		"studentadmissionno", "studentadmissionnumber", "childadmissionnumber")
	add(fMISID, hNone, "misid", "id", "personid", "externalid", "misreference")
	add(fMISID, hPupil, "studentid", "pupilid", "learnerid", "studentreference", "pupilreference")
	add(fMISID, hStaff, "staffcode", "staffid", "employeeid", "employeeno", "employeenumber", "payrollnumber",
		"staffreference", "staffnumber", "teachercode")
	add(fMISID, hParent, "contactid", "parentid", "carerid", "contactreference", "parentreference", "contactmisid", "parentmisid")
	add(fPupilMISID, hPupil, "pupilmisid", "studentmisid", "childid", "childmisid")
	add(fLegalForename, hNone, "legalforename", "forename", "forenames", "firstname", "givenname", "givennames",
		"legalfirstname", "legalgivenname", "first")
	add(fLegalForename, hPupil, "pupilforename", "studentforename", "pupilfirstname", "studentfirstname",
		"childforename", "childfirstname", "pupillegalforename", "studentlegalforename")
	add(fLegalForename, hParent, "contactforename", "parentforename", "carerforename", "contactfirstname",
		"parentfirstname", "carerfirstname", "contactlegalforename")
	add(fPreferredForename, hNone, "preferredforename", "preferredfirstname", "preferredname", "knownas", "chosenname", "preferredgivenname")
	add(fPreferredForename, hPupil, "pupilpreferredforename", "studentpreferredforename", "pupilpreferredname", "studentpreferredname")
	add(fPreferredForename, hParent, "contactpreferredforename", "parentpreferredforename")
	add(fSurname, hNone, "legalsurname", "surname", "lastname", "familyname", "legallastname", "legalfamilyname", "last")
	add(fSurname, hPupil, "pupilsurname", "studentsurname", "pupillastname", "studentlastname", "childsurname",
		"childlastname", "pupillegalsurname", "studentlegalsurname")
	add(fSurname, hParent, "contactsurname", "parentsurname", "carersurname", "contactlastname", "parentlastname",
		"carerlastname", "contactlegalsurname")
	add(fName, hNone, "name", "fullname", "legalname", "displayname")
	add(fName, hPupil, "pupilname", "studentname", "childname", "learnername", "pupilfullname", "studentfullname")
	add(fName, hStaff, "staffname", "stafffullname", "employeename")
	add(fName, hParent, "contactname", "parentname", "carername", "parentcarername", "contactfullname", "parentfullname")
	add(fYear, hNone, "year", "yeargroup", "yeargrp", "yr", "ncyear", "curriculumyear", "nationalcurriculumyear",
		"ncyearactual", "yearofstudy")
	add(fYear, hPupil, "pupilyear", "studentyear", "pupilyeargroup", "studentyeargroup", "childyear")
	add(fRegGroup, hNone, "reg", "reggroup", "registrationgroup", "registrationform", "regform", "form", "formgroup",
		"tutorgroup", "class", "classname", "registrationclass", "regclass", "homeroom")
	add(fRegGroup, hPupil, "pupilreggroup", "studentreggroup", "pupilform", "studentform", "pupilclass", "studentclass")
	add(fRole, hStaff, "role", "jobtitle", "post", "staffrole", "position", "jobrole", "staffpost", "roletitle")
	add(fUsername, hNone, "username", "login", "loginname", "networklogin", "networkusername", "logon", "logonname",
		"accountname", "samaccountname", "userid", "networkid", "loginid")
	add(fEmail, hNone, "email", "emailaddress", "mail", "schoolemail", "workemail", "emailaddr", "primaryemail", "userprincipalname")
	add(fEmail, hPupil, "pupilemail", "studentemail", "pupilemailaddress", "studentemailaddress")
	add(fEmail, hParent, "contactemail", "parentemail", "careremail", "contactemailaddress", "parentemailaddress",
		"careremailaddress", "parentcareremail")
	add(fRelationship, hParent, "relationship", "relation", "relationshiptopupil", "relationshiptostudent",
		"relationshiptochild", "contactrelationship", "relationshiptype", "parentrelationship")
	add(fKind, hNone, "kind", "personkind", "persontype", "usertype", "recordtype", "peopletype")
	// Recognised and deliberately not kept (data minimisation): Warden
	// needs a year group, not a date of birth, and no contact details.
	add(fIgnored, hNone, "dob", "dateofbirth", "birthdate", "birthday", "age", "title", "gender", "sex", "legalsex",
		"ethnicity", "ethnicgroup", "religion", "nationality", "countryofbirth", "firstlanguage", "language",
		"address", "address1", "address2", "address3", "addressline1", "addressline2", "addressline3", "street",
		"town", "city", "county", "postcode", "postalcode", "telephone", "phone", "tel", "mobile", "mobilephone",
		"homephone", "hometelephone", "workphone", "worktelephone", "telephoneno", "phonenumber", "mobilenumber",
		"fsm", "fsmeligible", "freeschoolmeals", "pupilpremium", "pp", "sen", "senstatus", "senprovision", "send",
		"eal", "medical", "medicalconditions", "medicalnotes", "allergies", "house", "enrolmentstatus",
		"admissiondate", "dateofadmission", "entrydate", "leavingdate", "dateofleaving", "leavedate", "startdate",
		"enddate", "parentalresponsibility", "responsibility", "priority", "contactpriority", "courtorder",
		"lookedafter", "cla", "lac", "inlacare", "middlename", "middlenames", "middle", "preferredsurname",
		"formersurname", "previoussurname", "initials", "contacttitle", "parenttitle", "pupiltitle", "pupildob",
		"studentdob", "childdob", "pupilgender", "studentgender", "tutor", "formtutor", "classteacher",
		"photo", "photograph", "notes", "comments", "uln", "candidatenumber", "ncn", "mobileno", "workmobile",
		"homeemail", "personalemail", "emergencycontact", "doctor", "gp", "qualifications", "contract",
		"fte", "department", "startdateofemployment")
	return m
}()

// normHeader reduces a header to lower-case letters and digits, so that
// "E-mail", "E_mail " and "EMAIL" match.
func normHeader(h string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return unicode.ToLower(r)
		}
		return -1
	}, h)
}

// lookupHeader returns what a header means.
func lookupHeader(h string) synonym {
	return headerSynonyms[normHeader(h)]
}
